"""The shared clients: created once per loop on first use, bounded waits, closed on shutdown."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.exceptions import RedisError

from shared import resources
from shared.config import load_settings
from shared.db.database import Database
from shared.db.errors import translate_errors
from shared.errors import AlreadyExists, ServiceUnavailable
from shared.resources import LazyResource, make_redis

ROOT = Path(__file__).resolve().parents[2]


async def test_a_concurrent_first_use_creates_one_instance() -> None:
    created: list[object] = []

    async def factory() -> object:
        await asyncio.sleep(0.05)  # a slow connect, so the callers really overlap
        created.append(object())
        return created[-1]

    async def closer(_: object) -> None:
        return None

    lazy: LazyResource[object] = LazyResource(factory, closer)
    values = await asyncio.gather(*(lazy.get() for _ in range(20)))
    assert len(created) == 1
    assert all(value is created[0] for value in values)


def test_importing_the_app_reads_no_setting_and_opens_nothing() -> None:
    # No settings at all in the environment: an import-time read or connect would fail here.
    code = "import function_app, shared.resources as r; assert not r.database.loops() and not r.redis_client.loops()"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={"PATH": "/usr/bin:/bin"}, capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stderr.decode()


async def test_clients_are_shared_by_callers_on_one_loop(app_settings: dict[str, str]) -> None:
    first, second = await asyncio.gather(resources.get_database(), resources.get_database())
    assert first is second
    async with first.connection() as conn:
        assert await conn.fetchval("SELECT 1") == 1


@pytest.fixture
async def tiny_database(app_settings: dict[str, str]) -> AsyncIterator[Database]:
    settings = load_settings(
        {**app_settings, "DB_POOL_MAX": "1", "DB_POOL_MIN": "0", "DB_ACQUIRE_TIMEOUT_SECONDS": "0.1"}
    )
    database = await Database.connect(settings)
    yield database
    await database.close()


async def test_an_exhausted_pool_fails_fast_with_503(tiny_database: Database) -> None:
    async with tiny_database.connection() as held:
        await held.execute("SELECT 1")
        with pytest.raises(ServiceUnavailable):
            async with tiny_database.connection():
                pass


async def test_an_unreachable_database_is_503(app_settings: dict[str, str]) -> None:
    settings = load_settings({**app_settings, "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"})
    with pytest.raises(ServiceUnavailable):
        await Database.connect(settings)


async def test_unique_violations_become_409_in_the_data_layer(tiny_database: Database) -> None:
    async with tiny_database.transaction() as conn:
        await conn.execute("CREATE TEMP TABLE emails (email text PRIMARY KEY)")
        await conn.execute("INSERT INTO emails VALUES ('a@example.com')")
        with pytest.raises(AlreadyExists) as caught:
            async with conn.transaction():
                with translate_errors():
                    await conn.execute("INSERT INTO emails VALUES ('a@example.com')")
        assert caught.value.status == 409


async def test_the_redis_pool_waits_for_a_free_connection_instead_of_failing(
    app_settings: dict[str, str],
) -> None:
    settings = load_settings({**app_settings, "REDIS_MAX_CONNECTIONS": "2", "REDIS_POOL_TIMEOUT_SECONDS": "2"})
    client = make_redis(settings)
    try:
        # Each BLPOP holds its connection for 50 ms; 12 of them share 2 connections.
        results = await asyncio.gather(
            *(client.blpop([f"empty:{i}"], timeout=0.05) for i in range(12)), return_exceptions=True
        )
        assert not [r for r in results if isinstance(r, RedisError | OSError)]
    finally:
        await client.aclose(close_connection_pool=True)


async def test_close_resources_closes_what_this_loop_created(app_settings: dict[str, str]) -> None:
    database = await resources.get_database()
    redis = await resources.get_redis()
    await resources.close_resources()
    assert database.pool.is_closing()
    assert asyncio.get_running_loop() not in resources.database.loops()
    assert await resources.get_redis() is not redis  # a later use starts afresh
    await resources.close_resources()
