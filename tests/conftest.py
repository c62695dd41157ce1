"""Test session wiring: private services (devhost.pytest_plugin), the app's settings, and the app
served by devhost over HTTP with users to call it (the types are in tests/api_support.py).

A folder's conftest.py or a test module overrides a fixture here by defining one of the same name
(tests/accounts drive the app through registration with their own `api`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import asyncpg
import pytest
from api_support import Client, MakeUser, User, insert_user, serve_app
from booking_history import History

from devhost.testing import HostThread
from shared.config import get_settings

pytest_plugins = ["devhost.pytest_plugin"]


@pytest.fixture(scope="session")
def app_settings(app_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The app's environment for this session, applied to the process like the host does."""
    saved = dict(os.environ)
    os.environ.update(app_env)
    get_settings.cache_clear()
    yield app_env
    os.environ.clear()
    os.environ.update(saved)
    get_settings.cache_clear()


@pytest.fixture
async def empty_database_url(database_url: str) -> AsyncIterator[str]:
    """A new, empty database in the session's server, dropped after the test."""
    from devhost.pytest_plugin import with_database  # after pytest registered the plugin

    name = "empty_" + uuid.uuid4().hex[:12]
    admin = await asyncpg.connect(with_database(database_url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield with_database(database_url, name)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="module")
def app_host(app_settings: dict[str, str]) -> Iterator[HostThread]:
    """The app (function_app.py) served by devhost for one test module."""
    yield from serve_app()


@pytest.fixture
async def api(app_host: HostThread) -> AsyncIterator[Client]:
    connector = aiohttp.TCPConnector(limit=0)  # the concurrency tests open a connection per request
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:
        yield Client(http, app_host.url)


@pytest.fixture
async def db(database_url: str, app_settings: dict[str, str]) -> AsyncIterator[asyncpg.Connection[Any]]:
    """A connection to the app's database, for seeding rows and reading them back."""
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


@pytest.fixture
def make_user(db: asyncpg.Connection[Any]) -> MakeUser:
    """Insert a user in a role, with an access token."""

    async def make(role: str) -> User:
        return await insert_user(db, role)

    return make


@pytest.fixture
def history(db: asyncpg.Connection[Any]) -> History:
    return History(db)
