"""Read-through cache on Redis that keeps serving when Redis does not.

- Values are bytes (serialised once by the caller, returned verbatim).
- Concurrent misses of one key in this process share one load (single-flight).
- Redis errors trip a circuit breaker: reads then go to the loader (the database), coalesced by the
  single-flight, and public keys are also kept for a few seconds in an in-process cache. The
  in-process copy is only read while Redis is unreachable, so it never hides a write from a reader
  while Redis works.
- Invalidations that could not reach Redis are kept and replayed before the first Redis call after
  it comes back, so an outage does not leave stale keys behind until their TTL.
- Hits, misses and fallbacks are counted (`stats`) and reported by the health endpoint.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.cache.breaker import CircuitBreaker
from shared.cache.local import LocalCache

logger = logging.getLogger(__name__)

T = TypeVar("T")
Loader = Callable[[], Awaitable[bytes]]


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    local_hits: int = 0
    redis_errors: int = 0
    redis_skipped: int = 0

    def snapshot(self) -> dict[str, int]:
        return asdict(self)


class _Unavailable:
    pass


_UNAVAILABLE = _Unavailable()


class Cache:
    def __init__(
        self,
        redis: Callable[[], Awaitable[Redis]],
        breaker: CircuitBreaker,
        *,
        local_ttl_s: float = 5.0,
        local: LocalCache | None = None,
    ) -> None:
        self._redis = redis
        self._breaker = breaker
        self._local = local or LocalCache()
        self._local_ttl_s = local_ttl_s
        self._inflight: dict[str, asyncio.Future[bytes]] = {}
        self._generations: dict[str, int] = {}
        self._pending_invalidations: set[str] = set()
        self.stats = CacheStats()

    @property
    def redis_available(self) -> bool:
        return not self._breaker.is_open

    async def get_or_load(self, key: str, ttl_s: int, load: Loader, *, public: bool = False) -> bytes:
        """The cached value of `key`, loading and caching it on a miss.

        `public` marks values that are the same for every user; only those may be served from the
        in-process copy while Redis is unreachable.
        """
        cached = await self._call(lambda client: client.get(key))
        if isinstance(cached, bytes):
            self.stats.hits += 1
            return cached
        if cached is _UNAVAILABLE and public and (local := self._local.get(key)) is not None:
            self.stats.local_hits += 1
            return local
        self.stats.misses += 1
        logger.debug("cache miss %s", key)
        generation = self._generations.get(key, 0)
        value = await self._load_once(key, load)
        if self._generations.get(key, 0) == generation:
            # Skipped when an invalidation raced the load: its result may predate the write.
            stored = await self._call(lambda client: client.set(key, value, ex=ttl_s))
            if stored is _UNAVAILABLE and public:
                self._local.set(key, value, min(self._local_ttl_s, ttl_s))
        return value

    async def invalidate(self, *keys: str) -> None:
        """Drop `keys` everywhere this process can reach; call it after the write has committed."""
        for key in keys:
            self._generations[key] = self._generations.get(key, 0) + 1
            self._inflight.pop(key, None)
        self._local.delete(*keys)
        deleted = await self._call(lambda client: client.delete(*keys))
        if deleted is _UNAVAILABLE:
            self._pending_invalidations.update(keys)

    async def ping(self) -> bool:
        """Whether Redis answers now (an open circuit answers False without a network call)."""
        return await self._call(lambda client: client.ping()) is not _UNAVAILABLE

    async def _call(self, operation: Callable[[Redis], Awaitable[T]]) -> T | _Unavailable:
        if not self._breaker.allow():
            self.stats.redis_skipped += 1
            return _UNAVAILABLE
        try:
            client = await self._redis()
            if self._pending_invalidations:
                pending = list(self._pending_invalidations)
                await client.delete(*pending)
                self._pending_invalidations.difference_update(pending)
            result = await operation(client)
        except (RedisError, OSError) as exc:
            self.stats.redis_errors += 1
            self._breaker.record_failure(exc)
            return _UNAVAILABLE
        self._breaker.record_success()
        return result

    async def _load_once(self, key: str, load: Loader) -> bytes:
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await load()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # marks it retrieved when nobody else was waiting
            raise
        else:
            future.set_result(value)
            return value
        finally:
            if self._inflight.get(key) is future:
                del self._inflight[key]

    def describe(self) -> dict[str, Any]:
        return {"redis": "ok" if self.redis_available else "unavailable", **self.stats.snapshot()}
