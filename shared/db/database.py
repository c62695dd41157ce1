"""The app's handle on PostgreSQL: connections and transactions with bounded waits.

Waiting for a connection is bounded (DB_ACQUIRE_TIMEOUT_SECONDS): when the pool is exhausted or the
database is unreachable the request fails fast with 503 + Retry-After instead of queueing until the
client gives up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from shared.config import Settings
from shared.db.errors import translate_data_errors
from shared.db.pool import create_pool
from shared.errors import ServiceUnavailable

# What repositories receive: a pooled connection (or a plain one in scripts and tests).
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

_UNAVAILABLE = (TimeoutError, OSError, asyncpg.TooManyConnectionsError, asyncpg.CannotConnectNowError)


class Database:
    def __init__(self, pool: asyncpg.Pool, acquire_timeout_s: float) -> None:
        self.pool = pool
        self._acquire_timeout_s = acquire_timeout_s

    @classmethod
    async def connect(cls, settings: Settings) -> Database:
        try:
            pool = await create_pool(settings)
        except _UNAVAILABLE as exc:
            raise ServiceUnavailable("the database is unreachable") from exc
        return cls(pool, settings.db_acquire_timeout_s)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        try:
            async with self.pool.acquire(timeout=self._acquire_timeout_s) as conn:
                with translate_data_errors():  # the last line of defence: bad values are 422, not 500
                    yield conn
        except _UNAVAILABLE as exc:
            raise ServiceUnavailable("the database is busy or unreachable") from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def close(self) -> None:
        await self.pool.close()
