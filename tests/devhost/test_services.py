"""The private service stack: PostgreSQL with btree_gist, Redis (and its restart), Azurite."""

from __future__ import annotations

import asyncpg
import pytest
import redis.asyncio as aioredis
from azure.storage.blob.aio import BlobServiceClient
from redis.exceptions import ConnectionError as RedisConnectionError

from devhost.services import Stack


async def test_postgres_session_database_has_btree_gist(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        assert await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'btree_gist'") == 1
        assert (await conn.fetchval("SHOW server_version")).startswith("15")
        assert await conn.fetchval("SELECT current_database()") == database_url.rsplit("/", 1)[1]
    finally:
        await conn.close()


async def test_redis_answers_ping(redis_url: str) -> None:
    async with aioredis.Redis.from_url(redis_url) as client:
        assert await client.ping()


async def test_azurite_lists_containers(storage_connection_string: str) -> None:
    async with BlobServiceClient.from_connection_string(storage_connection_string) as client:
        await client.create_container("services-test")
        names = [container.name async for container in client.list_containers()]
    assert "services-test" in names


async def test_redis_restarts_on_the_same_port(stack: Stack, redis_url: str) -> None:
    if stack.redis is None:
        pytest.skip("Redis comes from REDIS_URL")
    port = stack.redis.port
    stack.redis.stop()
    async with aioredis.Redis.from_url(redis_url, socket_connect_timeout=1) as client:
        with pytest.raises(RedisConnectionError):
            await client.ping()
    stack.redis.start()
    assert stack.redis.port == port
    async with aioredis.Redis.from_url(redis_url) as client:
        assert await client.ping()


def test_app_env_names_the_session_services(app_env: dict[str, str], stack: Stack) -> None:
    assert app_env["AzureWebJobsStorage"] == app_env["AZURE_STORAGE_CONNECTION_STRING"]
    assert app_env["REDIS_URL"] == stack.redis_url
    assert app_env["DATABASE_URL"] != stack.database_url  # a database of its own
