"""Test session wiring: private services (devhost.pytest_plugin) and the app's settings."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

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
