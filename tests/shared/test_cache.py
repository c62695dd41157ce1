"""The cache against a real Redis, and what it does when Redis goes away."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from shared.cache.breaker import CircuitBreaker
from shared.cache.cache import Cache
from shared.config import load_settings
from shared.resources import make_redis


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def redis_for(url: str, **overrides: str) -> Redis:
    env = {
        "DATABASE_URL": "postgresql://x@127.0.0.1/x",
        "REDIS_URL": url,
        "AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
        **overrides,
    }
    return make_redis(load_settings(env))


class CountingLoader:
    def __init__(self, value: bytes = b"v1", delay_s: float = 0.0) -> None:
        self.value = value
        self.delay_s = delay_s
        self.calls = 0

    async def __call__(self) -> bytes:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        return self.value


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    redis = redis_for(redis_url)
    yield redis
    await redis.aclose(close_connection_pool=True)


def make_cache(redis: Redis, cooldown_s: float = 0.2) -> Cache:
    async def provide() -> Redis:
        return redis

    return Cache(provide, CircuitBreaker(cooldown_s=cooldown_s), local_ttl_s=5)


def key() -> str:
    return f"test:{uuid.uuid4().hex}"


async def test_a_miss_loads_and_stores_then_hits(client: Redis) -> None:
    cache, name, load = make_cache(client), key(), CountingLoader()
    assert await cache.get_or_load(name, 60, load) == b"v1"
    assert await cache.get_or_load(name, 60, load) == b"v1"
    assert load.calls == 1
    assert await client.get(name) == b"v1"
    assert 55 <= await client.ttl(name) <= 60
    assert (cache.stats.hits, cache.stats.misses) == (1, 1)


async def test_concurrent_misses_share_one_load(client: Redis) -> None:
    cache, name, load = make_cache(client), key(), CountingLoader(delay_s=0.05)
    values = await asyncio.gather(*(cache.get_or_load(name, 60, load) for _ in range(50)))
    assert set(values) == {b"v1"}
    assert load.calls == 1


async def test_invalidation_makes_the_next_read_load_again(client: Redis) -> None:
    cache, name = make_cache(client), key()
    await cache.get_or_load(name, 60, CountingLoader(b"old"))
    await cache.invalidate(name)
    assert await cache.get_or_load(name, 60, CountingLoader(b"new")) == b"new"


async def test_a_load_that_raced_an_invalidation_is_not_stored(client: Redis) -> None:
    cache, name = make_cache(client), key()
    loading, release = asyncio.Event(), asyncio.Event()

    async def slow() -> bytes:
        loading.set()
        await release.wait()
        return b"before-write"

    reader = asyncio.create_task(cache.get_or_load(name, 60, slow))
    await loading.wait()
    await cache.invalidate(name)  # the write committed while the load was running
    release.set()
    assert await reader == b"before-write"
    assert await client.get(name) is None
    assert await cache.get_or_load(name, 60, CountingLoader(b"after-write")) == b"after-write"


async def test_a_failed_load_reaches_every_waiter_and_is_not_cached(client: Redis) -> None:
    cache, name = make_cache(client), key()

    async def broken() -> bytes:
        await asyncio.sleep(0.02)
        raise RuntimeError("database down")

    results = await asyncio.gather(*(cache.get_or_load(name, 60, broken) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert await cache.get_or_load(name, 60, CountingLoader(b"ok")) == b"ok"


async def test_an_invalidation_reaches_redis_while_this_process_skips_it_after_one_error(client: Redis) -> None:
    """Another process reads Redis; one transient error opened only the writer's breaker."""
    reader, writer, name = make_cache(client), make_cache(client, cooldown_s=60), key()
    assert await reader.get_or_load(name, 300, CountingLoader(b"old")) == b"old"
    writer._breaker.record_failure(TimeoutError())
    await writer.invalidate(name)  # the write is acknowledged after this returns
    assert await reader.get_or_load(name, 300, CountingLoader(b"new")) == b"new"


async def test_unreachable_redis_falls_back_and_trips_the_breaker_once(caplog: pytest.LogCaptureFixture) -> None:
    redis = redis_for(f"redis://127.0.0.1:{unused_port()}/0")
    cache, load = make_cache(redis, cooldown_s=60), CountingLoader()
    try:
        with caplog.at_level(logging.WARNING, logger="shared.cache.breaker"):
            values = [await cache.get_or_load("k", 60, load, public=False) for _ in range(20)]
        assert values == [b"v1"] * 20
        assert not cache.redis_available
        assert cache.stats.redis_errors == 1  # later calls skip Redis instead of waiting for a timeout
        assert cache.stats.redis_skipped >= 19
        assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1
        assert load.calls == 20  # private values always come from the source of truth
    finally:
        await redis.aclose(close_connection_pool=True)


async def test_public_values_are_buffered_in_process_while_redis_is_down() -> None:
    redis = redis_for(f"redis://127.0.0.1:{unused_port()}/0")
    cache, load = make_cache(redis, cooldown_s=60), CountingLoader()
    try:
        for _ in range(10):
            assert await cache.get_or_load("public", 60, load, public=True) == b"v1"
        assert load.calls == 1
        assert cache.stats.local_hits == 9
        await cache.invalidate("public")
        assert await cache.get_or_load("public", 60, CountingLoader(b"v2"), public=True) == b"v2"
    finally:
        await redis.aclose(close_connection_pool=True)


async def test_recovery_replays_invalidations_missed_during_the_outage(stack: Any, redis_url: str) -> None:
    redis = redis_for(redis_url)
    cache, name = make_cache(redis, cooldown_s=0.1), key()
    try:
        await cache.get_or_load(name, 300, CountingLoader(b"stale"))
        stack.redis.stop()
        try:
            await cache.invalidate(name)  # the write happened; Redis could not hear about it
            assert not cache.redis_available
        finally:
            stack.redis.start()
        # Redis kept nothing (no persistence), so simulate a partitioned Redis that kept the old value.
        await redis.set(name, b"stale")
        await asyncio.sleep(0.15)
        assert await cache.get_or_load(name, 300, CountingLoader(b"fresh")) == b"fresh"
        assert cache.redis_available
    finally:
        await redis.aclose(close_connection_pool=True)


async def test_the_breaker_half_opens_after_the_cooldown() -> None:
    now = [0.0]
    breaker = CircuitBreaker(cooldown_s=2.0, clock=lambda: now[0])
    breaker.record_failure(OSError())
    assert not breaker.allow()
    now[0] = 2.5
    assert breaker.allow()  # one probe
    assert not breaker.allow()  # and only one
    assert breaker.record_success()
    assert breaker.allow()
