"""Fixed-window rate limits counted in Redis, shared by every instance.

While Redis is unreachable the counts are kept in this process instead: limits then hold per
instance rather than not at all (performance.md §5.5: never drop rate limiting silently).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.cache.breaker import CircuitBreaker
from shared.errors import TooManyRequests

_MAX_LOCAL_KEYS = 10_000


class RateLimiter:
    def __init__(
        self,
        redis: Callable[[], Awaitable[Redis]],
        breaker: CircuitBreaker,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._breaker = breaker
        self._clock = clock
        self._local: OrderedDict[str, tuple[float, int]] = OrderedDict()

    async def hit(self, key: str, *, limit: int, window_s: int) -> None:
        """Count one attempt on `key`; TooManyRequests (with Retry-After) once `limit` is exceeded in the window."""
        counted = await self._count_in_redis(key, window_s)
        count, retry_after_s = counted if counted is not None else self._count_locally(key, window_s)
        if count > limit:
            raise TooManyRequests("too many attempts; retry later", retry_after_s=max(1, retry_after_s))

    async def _count_in_redis(self, key: str, window_s: int) -> tuple[int, int] | None:
        if not self._breaker.allow():
            return None
        try:
            client = await self._redis()
            async with client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, window_s, nx=True)
                pipe.ttl(key)
                count, _, ttl = await pipe.execute()
        except (RedisError, OSError) as exc:
            self._breaker.record_failure(exc)
            return None
        self._breaker.record_success()
        return int(count), int(ttl) if int(ttl) > 0 else window_s

    def _count_locally(self, key: str, window_s: int) -> tuple[int, int]:
        now = self._clock()
        started, count = self._local.get(key, (now, 0))
        if now - started >= window_s:
            started, count = now, 0
        self._local[key] = (started, count + 1)
        self._local.move_to_end(key)
        while len(self._local) > _MAX_LOCAL_KEYS:
            self._local.popitem(last=False)
        return count + 1, int(window_s - (now - started)) + 1
