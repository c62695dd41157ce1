"""Rate limits counted in Redis, and still enforced (per process) while Redis is unreachable."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio import Redis

from shared.cache.breaker import CircuitBreaker
from shared.cache.ratelimit import RateLimiter
from shared.errors import TooManyRequests


async def test_limits_are_shared_through_redis_with_retry_after(redis_url: str) -> None:
    clients: list[Redis] = []

    async def redis() -> Redis:
        client = Redis.from_url(redis_url)
        clients.append(client)
        return client

    key = f"rl:test:{uuid.uuid4().hex}"
    first, second = RateLimiter(redis, CircuitBreaker(1.0)), RateLimiter(redis, CircuitBreaker(1.0))
    await first.hit(key, limit=2, window_s=60)
    await second.hit(key, limit=2, window_s=60)  # another instance counts on the same key
    with pytest.raises(TooManyRequests) as limited:
        await first.hit(key, limit=2, window_s=60)
    assert 0 < limited.value.retry_after_s <= 60
    for client in clients:
        await client.aclose()


async def test_an_unreachable_redis_falls_back_to_counting_in_process() -> None:
    async def unreachable() -> Redis:
        return Redis(host="127.0.0.1", port=9, socket_connect_timeout=0.1)

    now = [100.0]
    limiter = RateLimiter(unreachable, CircuitBreaker(60.0), clock=lambda: now[0])
    await limiter.hit("k", limit=2, window_s=10)
    await limiter.hit("k", limit=2, window_s=10)
    with pytest.raises(TooManyRequests):
        await limiter.hit("k", limit=2, window_s=10)
    now[0] += 10  # a new window
    await limiter.hit("k", limit=2, window_s=10)
