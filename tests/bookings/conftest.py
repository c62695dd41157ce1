"""Listed mentors with open hours (the host, `api`, `db`, `make_user` and the app's own database and
cache for service-level tests are tests/conftest.py's)."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from bookings_helpers import MakeMentor, User, insert_mentor


@pytest.fixture
def make_mentor(db: asyncpg.Connection[Any]) -> MakeMentor:
    async def make(**options: int) -> User:
        return await insert_mentor(db, **options)

    return make
