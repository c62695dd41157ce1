"""asyncpg pool construction from settings."""

from __future__ import annotations

import json

import asyncpg

from shared.config import Settings


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's reset query on release (advisory unlock all, CLOSE ALL, UNLISTEN *, RESET ALL:
    a round trip per request): the app leaves no session state on a pooled connection, which
    tests/shared/test_pool_session_state.py guards. asyncpg still rolls back an open transaction."""


async def create_pool(settings: Settings) -> asyncpg.Pool:
    """A pool sized and tuned by settings; json/jsonb columns map to Python values."""
    return await asyncpg.create_pool(
        settings.database_url,
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        max_inactive_connection_lifetime=settings.db_pool_idle_timeout_s,
        timeout=settings.db_connect_timeout_s,
        command_timeout=settings.db_command_timeout_s,
        statement_cache_size=settings.statement_cache_size,
        init=_init_connection,
        reset=_keep_session,
    )
