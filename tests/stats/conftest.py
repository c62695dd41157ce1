"""The app served by devhost over HTTP for the stats tests, and a seeded booking history."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from booking_history import Client, History

from devhost.testing import HostThread
from shared.resources import close_resources

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def app_host(app_settings: dict[str, str]) -> Iterator[HostThread]:
    with HostThread(ROOT) as host:
        yield host
        host.call(close_resources())


@pytest.fixture
async def api(app_host: HostThread) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
        yield Client(http, app_host.url)


@pytest.fixture
async def history(database_url: str, app_settings: dict[str, str]) -> AsyncIterator[History]:
    conn = await asyncpg.connect(database_url)
    yield History(conn)
    await conn.close()
