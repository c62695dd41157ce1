"""EXPLAIN support for index tests: a throwaway migrated database with seeded rows, and plan nodes."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from shared.db.migrate import migrate


@asynccontextmanager
async def seeded_database(database_url: str, prefix: str, seed_sql: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    """A connection to a new migrated database holding `seed_sql`'s rows; dropped afterwards."""
    from devhost.pytest_plugin import with_database  # after pytest registered the plugin

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(with_database(database_url, "postgres"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        await migrate(with_database(database_url, name))
        conn = await asyncpg.connect(with_database(database_url, name))
        try:
            await conn.execute(seed_sql)
            yield conn
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def plan(conn: asyncpg.Connection[Any], sql: str, *params: Any) -> list[dict[str, Any]]:
    """Every node of the plan PostgreSQL chooses for `sql`, depth first."""
    found: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        found.append(node)
        for child in node.get("Plans", []):
            walk(child)

    walk(json.loads(await conn.fetchval("EXPLAIN (FORMAT JSON) " + sql, *params))[0]["Plan"])
    return found


def index_conditions(nodes: list[dict[str, Any]], index: str) -> list[str]:
    return [n.get("Index Cond", "") for n in nodes if n.get("Index Name") == index]
