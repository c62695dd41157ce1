"""SQL for the UI configuration."""

from __future__ import annotations

from typing import Any

from shared.db.database import Connection

SELECT_ALL = "SELECT key, value FROM ui_config ORDER BY key"


async def fetch_all(conn: Connection) -> dict[str, Any]:
    return {row["key"]: row["value"] for row in await conn.fetch(SELECT_ALL)}
