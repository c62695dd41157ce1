"""The UI configuration clients load at start-up: public, read-mostly, served through the cache."""

from __future__ import annotations

import json

from shared.cache.cache import Cache
from shared.db.database import Database
from shared.uiconfig import repository

CACHE_KEY = "ui:config"
CACHE_TTL_S = 300


async def get_ui_config(database: Database, cache: Cache) -> bytes:
    """The whole configuration as JSON bytes, from the cache or the database."""

    async def load() -> bytes:
        async with database.connection() as conn:
            return json.dumps(await repository.fetch_all(conn), separators=(",", ":")).encode()

    return await cache.get_or_load(CACHE_KEY, CACHE_TTL_S, load, public=True)
