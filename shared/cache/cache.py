"""Read-through cache on Redis that keeps serving when Redis does not.

- Values are bytes (serialised once by the caller, returned verbatim).
- Concurrent misses of one key in this process share one load (single-flight).
- Redis errors trip a circuit breaker: reads then go to the loader (the database), coalesced by the
  single-flight, and public keys are also kept for a few seconds in an in-process cache. The
  in-process copy is only read while Redis is unreachable, so it never hides a write from a reader
  while Redis works.
- A write's invalidation (`invalidate`, `bump`) goes to Redis before the write is acknowledged
  even when this process's breaker is open (one timeout opens it, yet other processes may be
  reading Redis) or its pool is busy (it then takes a connection of its own): up to
  `write_attempts` tries within about `write_deadline_s`. Only when Redis does not answer them is
  it kept and replayed before this process's first Redis call after Redis comes back. The window
  that remains: until that replay (at most the entry's TTL), a process that can read Redis while
  this one could not (a partition, or a Redis that kept its data through the outage) may serve
  the value from before the write; while Redis is unreachable for everyone, other processes read
  the database, or a public value's in-process copy for up to `local_ttl_s`.
- Hits, misses and fallbacks are counted (`stats`), reported by the health endpoint and logged
  (a summary at INFO at most once per `stats_log_interval_s`, each miss at DEBUG).

Namespaced values that many writes invalidate (`get_or_load_versioned` / `bump`) are stored under a
generation that each write bumps (see generations.py), which makes them never stale after an
acknowledged write, and are protected from stampedes across processes: one process recomputes a
missing entry under a Redis lock while the others wait for it, and a hot entry is recomputed
shortly before it expires by one reader (XFetch) while the others keep getting the current value.
A versioned value whose content changes with the clock alone (a count of bookings still to start)
is returned by its loader as `Expiring`, so that it is not kept past that moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from redis.asyncio import ConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from shared.cache import generations
from shared.cache.breaker import CircuitBreaker
from shared.cache.generations import Keys
from shared.cache.local import LocalCache

logger = logging.getLogger(__name__)

T = TypeVar("T")
Loader = Callable[[], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class Expiring:
    """A loaded value that goes stale by the clock alone `ttl_s` seconds after its load began (e.g.
    when the next booking it counts as upcoming starts), with no write to bump it. It is kept for
    at most that long, less the load's own duration; a value already stale is not kept at all."""

    value: bytes
    ttl_s: float


VersionedLoader = Callable[[], Awaitable[bytes | Expiring]]


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    local_hits: int = 0
    redis_errors: int = 0
    redis_skipped: int = 0
    early_refreshes: int = 0
    redis_busy: int = 0
    lock_waits: int = 0

    def snapshot(self) -> dict[str, int]:
        return asdict(self)


class _Unavailable:
    pass


_UNAVAILABLE = _Unavailable()  # Redis is down (or the breaker says so)
# Redis is up but every pooled connection stayed busy past REDIS_POOL_TIMEOUT_SECONDS: overload, not
# an outage. It neither opens the breaker nor reads the in-process copy, which other instances'
# writes cannot reach: the request goes to the database instead.
_BUSY = _Unavailable()


class Cache:
    def __init__(
        self,
        redis: Callable[[], Awaitable[Redis]],
        breaker: CircuitBreaker,
        *,
        local_ttl_s: float = 5.0,
        local: LocalCache | None = None,
        xfetch_beta: float = 1.0,
        lock_ttl_s: float = 5.0,
        lock_wait_s: float = 2.0,
        lock_poll_s: float = 0.01,
        stats_log_interval_s: float = 60.0,
        write_attempts: int = 2,
        write_deadline_s: float = 1.0,
        write_retry_pause_s: float = 0.05,
    ) -> None:
        self._redis = redis
        self._breaker = breaker
        self._local = local or LocalCache()
        self._local_ttl_s = local_ttl_s
        self._xfetch_beta = xfetch_beta
        self._lock_ttl_ms = int(lock_ttl_s * 1000)
        self._lock_wait_s = lock_wait_s
        self._lock_poll_s = lock_poll_s
        self._stats_log_interval_s = stats_log_interval_s
        self._stats_logged_at = time.monotonic()
        self._write_attempts = write_attempts
        self._write_deadline_s = write_deadline_s
        self._write_retry_pause_s = write_retry_pause_s
        self._inflight: dict[str, asyncio.Future[Any]] = {}
        self._lock_token = secrets.token_hex(8)  # names this process as a versioned entry's loader
        self._generations: dict[str, int] = {}
        self._pending_invalidations: set[str] = set()
        self._pending_bumps: set[str] = set()
        self.stats = CacheStats()

    @property
    def redis_available(self) -> bool:
        return not self._breaker.is_open

    async def get_or_load(self, key: str, ttl_s: int, load: Loader, *, public: bool = False) -> bytes:
        """The cached value of `key`, loading and caching it on a miss.

        `public` marks values that are the same for every user; only those may be served from the
        in-process copy while Redis is unreachable.
        """
        self._log_stats_now_and_then()
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
        if not await self._reach(lambda client: client.delete(*keys)):
            self._pending_invalidations.update(keys)

    async def get_or_load_versioned(
        self, namespace: str, variant: str, ttl_s: int, load: VersionedLoader, *, public: bool = False
    ) -> bytes:
        """The entry `variant` of `namespace` for its current generation, loading it on a miss.

        Never returns a value loaded before a `bump(namespace)` that was acknowledged before this
        call began. `variant` names one shape of the value (a filter, a page) and must be short.
        The entry is kept `ttl_s`, or less when `load` returns it as `Expiring`.
        """
        self._log_stats_now_and_then()
        keys = Keys(namespace, variant)
        read_args = keys.read_args(self._lock_token, self._lock_ttl_ms)
        reply = await self._call(lambda client: generations.READ(client, [keys.generation], read_args))
        if isinstance(reply, _Unavailable):
            return await self._load_without_redis(keys, ttl_s, load, public=public and reply is _UNAVAILABLE)
        entry = generations.parse_read(reply)
        if entry.value is not None:
            if generations.refresh_early(entry, self._xfetch_beta):
                refreshed = await self._refresh_early(keys, entry, ttl_s, load)
                if refreshed is not None:
                    return refreshed
            self.stats.hits += 1
            return entry.value
        self.stats.misses += 1
        logger.debug("cache miss %s", keys.entry(entry.generation))
        # The first caller runs the load for every concurrent miss of this entry here: it loads when
        # its read found the lock free or this process's, else it waits for whoever holds it.
        return await self._load_once(keys.entry(entry.generation), lambda: self._fill(keys, entry, ttl_s, load))

    async def bump(self, *namespaces: str) -> None:
        """Make every entry of `namespaces` unreachable; call it after the write has committed."""
        for namespace in namespaces:
            self._generations[_local_namespace(namespace)] = self._generations.get(_local_namespace(namespace), 0) + 1
            self._local.delete_prefix(_local_namespace(namespace))
        for namespace in namespaces:
            generation_key = Keys(namespace, "").generation
            if not await self._reach(lambda client: generations.BUMP(client, [generation_key], [])):  # noqa: B023
                self._pending_bumps.add(namespace)

    async def _fill(self, keys: Keys, entry: generations.Entry, ttl_s: int, load: VersionedLoader) -> bytes:
        if entry.locked:
            return await self._compute(keys, entry.generation, ttl_s, load, self._lock_token)
        self.stats.lock_waits += 1
        entry_key = keys.entry(entry.generation)
        deadline = time.monotonic() + self._lock_wait_s
        while time.monotonic() < deadline:
            await asyncio.sleep(self._lock_poll_s)
            stored = await self._call(lambda client: client.get(entry_key))
            if isinstance(stored, bytes):
                return generations.unpack(stored)[1]
            if isinstance(stored, _Unavailable):
                break
        # The lock holder is slow or gone: load it ourselves rather than fail the request. Our token
        # still releases the lock if a later read of this process took it while we waited.
        return await self._compute(keys, entry.generation, ttl_s, load, self._lock_token)

    async def _refresh_early(
        self, keys: Keys, entry: generations.Entry, ttl_s: int, load: VersionedLoader
    ) -> bytes | None:
        # A token of the refresh's own, not the process's: a miss here while it runs (the entry
        # expired meanwhile) waits for its result instead of loading beside it.
        token = secrets.token_hex(8)
        lock, entry_key = keys.lock(entry.generation), keys.entry(entry.generation)
        won = await self._call(lambda client: client.set(lock, token, nx=True, px=self._lock_ttl_ms))
        if won is not True:
            return None  # someone else is refreshing: the current value is still valid
        ttl_ms = await self._call(lambda client: client.pttl(entry_key))
        if not isinstance(ttl_ms, int) or ttl_ms > entry.ttl_ms:  # refreshed since we read it
            await self._call(lambda client: generations.RELEASE(client, [lock], [token]))
            return None
        self.stats.early_refreshes += 1
        return await self._compute(keys, entry.generation, ttl_s, load, token)

    async def _compute(self, keys: Keys, generation: str, ttl_s: int, load: VersionedLoader, token: str) -> bytes:
        """Load and store the entry, then release its lock if `token` holds it."""
        entry_key, lock = keys.entry(generation), keys.lock(generation)
        try:
            loaded = await _timed_load(load, ttl_s)
        except BaseException:
            await self._call(lambda client: generations.RELEASE(client, [lock], [token]))
            raise
        ttl_ms = math.floor(loaded.keep_s * 1000)
        stored = generations.pack(max(1, round(loaded.load_s * 1000)), loaded.value)
        if ttl_ms <= 0:  # stale already: nothing to keep, only the lock to give back
            await self._call(lambda client: generations.RELEASE(client, [lock], [token]))
        else:
            await self._call(lambda client: generations.STORE(client, [entry_key, lock], [stored, str(ttl_ms), token]))
        return loaded.value

    async def _load_without_redis(self, keys: Keys, ttl_s: int, load: VersionedLoader, *, public: bool) -> bytes:
        namespace = _local_namespace(keys.namespace)
        local_key = f"{namespace}{keys.variant}"
        if public and (local := self._local.get(local_key)) is not None:
            self.stats.local_hits += 1
            return local
        self.stats.misses += 1
        generation = self._generations.get(namespace, 0)
        loaded = await self._load_once(f"{local_key}#{generation}", lambda: _timed_load(load, ttl_s))
        if public and self._generations.get(namespace, 0) == generation:
            self._local.set(local_key, loaded.value, min(self._local_ttl_s, loaded.keep_s))
        return loaded.value

    def _log_stats_now_and_then(self) -> None:
        now = time.monotonic()
        if now - self._stats_logged_at >= self._stats_log_interval_s:
            self._stats_logged_at = now
            logger.info("cache stats %s", " ".join(f"{k}={v}" for k, v in self.stats.snapshot().items()))

    async def ping(self) -> bool:
        """Whether Redis answers now (an open circuit answers False without a network call)."""
        return not isinstance(await self._call(lambda client: client.ping()), _Unavailable)

    async def _reach(self, operation: Callable[[Redis], Awaitable[object]]) -> bool:
        """Run a committed write's invalidation on Redis before the write is acknowledged; False
        only when Redis did not answer `write_attempts` tries within about `write_deadline_s`.

        Other processes may be reading Redis, so neither this process's open breaker (one timeout
        opens it) nor its busy pool (overload) is a reason to skip it: that would leave them serving
        the value from before the write. A pool that stays busy is bypassed with a connection of
        its own.
        """
        deadline = time.monotonic() + self._write_deadline_s
        for attempt in range(1, self._write_attempts + 1):
            result = await self._call(operation, insist=True)
            if result is _BUSY:
                result = await self._call(operation, insist=True, own_connection=True)
            if not isinstance(result, _Unavailable):
                return True
            if attempt == self._write_attempts or time.monotonic() + self._write_retry_pause_s >= deadline:
                break
            await asyncio.sleep(self._write_retry_pause_s)
        return False

    async def _call(
        self, operation: Callable[[Redis], Awaitable[T]], *, insist: bool = False, own_connection: bool = False
    ) -> T | _Unavailable:
        """Run `operation` on Redis, first replaying what an outage left pending. Skipped while the
        breaker is open unless `insist`; `own_connection` uses a connection outside the pool."""
        if not insist and not self._breaker.allow():
            self.stats.redis_skipped += 1
            return _UNAVAILABLE
        one_off: Redis | None = None
        try:
            client = await self._redis()
            if own_connection:
                client = one_off = _outside_the_pool(client)
            if self._pending_invalidations:
                pending = list(self._pending_invalidations)
                await client.delete(*pending)
                self._pending_invalidations.difference_update(pending)
            for namespace in list(self._pending_bumps):
                await generations.BUMP(client, [Keys(namespace, "").generation], [])
                self._pending_bumps.discard(namespace)
            result = await operation(client)
        except RedisConnectionError as exc:
            if isinstance(exc.__cause__, TimeoutError):  # BlockingConnectionPool found no free connection
                self.stats.redis_busy += 1
                return _BUSY
            self.stats.redis_errors += 1
            self._breaker.record_failure(exc)
            return _UNAVAILABLE
        except (RedisError, OSError) as exc:
            self.stats.redis_errors += 1
            self._breaker.record_failure(exc)
            return _UNAVAILABLE
        finally:
            if one_off is not None:
                with contextlib.suppress(RedisError, OSError):  # closing it must not fail a write
                    await one_off.aclose(close_connection_pool=True)
        self._breaker.record_success()
        return result

    async def _load_once(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        running: asyncio.Future[T] | None = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
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


def _local_namespace(namespace: str) -> str:
    return f"{namespace}|"


@dataclass(frozen=True, slots=True)
class _Loaded:
    value: bytes
    load_s: float  # how long the load took
    keep_s: float  # how long to keep it from now: the caller's TTL or the value's own, if shorter


async def _timed_load(load: VersionedLoader, ttl_s: int) -> _Loaded:
    started = time.monotonic()
    loaded = await load()
    load_s = time.monotonic() - started
    if isinstance(loaded, Expiring):
        return _Loaded(loaded.value, load_s, min(ttl_s, loaded.ttl_s - load_s))
    return _Loaded(loaded, load_s, ttl_s)


def _outside_the_pool(client: Redis) -> Redis:
    """A client with one connection of its own, set up like `client`'s pooled ones."""
    pool = client.connection_pool
    return Redis(connection_pool=ConnectionPool(connection_class=pool.connection_class, **pool.connection_kwargs))
