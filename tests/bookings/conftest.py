"""The app served by devhost over HTTP for the bookings tests, a database connection to seed
users, mentors and bookings, and the app's own database and cache for service-level tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from bookings_helpers import Client, User, insert_mentor, insert_user

from devhost.testing import HostThread
from shared import resources
from shared.cache.cache import Cache
from shared.db.database import Database
from shared.resources import close_resources

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def app_host(app_settings: dict[str, str]) -> Iterator[HostThread]:
    with HostThread(ROOT) as host:
        yield host
        host.call(close_resources())


@pytest.fixture
async def api(app_host: HostThread) -> AsyncIterator[Client]:
    connector = aiohttp.TCPConnector(limit=0)  # the concurrency tests open a connection per request
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:
        yield Client(http, app_host.url)


@pytest.fixture
async def db(database_url: str, app_settings: dict[str, str]) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


@pytest.fixture
def make_user(db: asyncpg.Connection) -> Callable[[str], Awaitable[User]]:
    async def make(role: str) -> User:
        return await insert_user(db, role)

    return make


@pytest.fixture
def make_mentor(db: asyncpg.Connection) -> Callable[..., Awaitable[User]]:
    async def make(**options: int) -> User:
        return await insert_mentor(db, **options)

    return make


@pytest.fixture(scope="module")
async def app_resources(app_settings: dict[str, str]) -> AsyncIterator[tuple[Database, Cache]]:
    """The app's pool and cache on the test loop, for service-level tests that pin `now`."""
    yield await resources.get_database(), await resources.get_cache()
    await close_resources()


@pytest.fixture
def app_database(app_resources: tuple[Database, Cache]) -> Database:
    return app_resources[0]


@pytest.fixture
def app_cache(app_resources: tuple[Database, Cache]) -> Cache:
    return app_resources[1]
