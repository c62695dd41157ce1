"""Values the database cannot take are 422 from any statement on the app's connections (the last
line of defence behind the API models), while programming errors still surface as they are."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from shared.config import load_settings
from shared.db.database import Database
from shared.errors import ValidationFailed


@pytest.fixture
async def database(app_settings: dict[str, str]) -> AsyncIterator[Database]:
    database = await Database.connect(load_settings({**app_settings, "DB_POOL_MAX": "1", "DB_POOL_MIN": "0"}))
    yield database
    await database.close()


@pytest.mark.parametrize(
    ("sql", "value"),
    [
        ("SELECT $1::text", "a\x00b"),  # SQLSTATE 22021
        ("SELECT $1::jsonb", {"notes": "a\x00b"}),  # 22P05 (the pool's codec sends "a\u0000b")
        ("SELECT $1::timestamptz", datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))),  # not encodable
        ("SELECT $1::timestamptz + interval '300000 years'", datetime(2026, 1, 1, tzinfo=UTC)),  # 22008
        ("SELECT $1::bigint", 2**70),  # not encodable
        ("SELECT $1::int + 2147483647", 1),  # 22003
        # Exponents asyncpg's numeric codec cannot encode (it raises a DataError from a ValueError).
        ("SELECT $1::numeric", Decimal("1E-99999")),
        ("SELECT $1::numeric", Decimal("0E-99999")),
        ("SELECT $1::numeric", Decimal("1E-16384")),
    ],
)
async def test_values_the_database_cannot_take_are_422(database: Database, sql: str, value: Any) -> None:
    with pytest.raises(ValidationFailed) as caught:
        async with database.connection() as conn:
            await conn.fetchval(sql, value)
    assert caught.value.status == 422


async def test_a_transaction_that_met_one_rolls_back(database: Database) -> None:
    async with database.connection() as conn:
        await conn.execute("CREATE TABLE IF NOT EXISTS data_error_notes (body text)")
    with pytest.raises(ValidationFailed):
        async with database.transaction() as conn:
            await conn.execute("INSERT INTO data_error_notes VALUES ('first')")
            await conn.execute("INSERT INTO data_error_notes VALUES ($1)", "a\x00b")
    async with database.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM data_error_notes") == 0
        await conn.execute("DROP TABLE data_error_notes")


async def test_programming_errors_are_not_turned_into_422(database: Database) -> None:
    with pytest.raises(asyncpg.PostgresSyntaxError):
        async with database.connection() as conn:
            await conn.execute("SELEC 1")
    with pytest.raises(asyncpg.DataError):  # a str where an int is bound: our bug, not the client's
        async with database.connection() as conn:
            await conn.fetchval("SELECT $1::int", "one")
