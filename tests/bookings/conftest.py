"""Listed mentors with open hours, and the app's own database and cache for service-level tests
(the host, `api`, `db` and `make_user` are tests/conftest.py's)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from bookings_helpers import MakeMentor, User, insert_mentor

from shared import resources
from shared.cache.cache import Cache
from shared.db.database import Database
from shared.resources import close_resources


@pytest.fixture
def make_mentor(db: asyncpg.Connection[Any]) -> MakeMentor:
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
