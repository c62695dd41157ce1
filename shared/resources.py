"""Process-wide clients shared by every function: the database pool, Redis, Blob storage and the cache.

Each is created lazily on the running event loop at first use, never at import: the worker's loop is
not running while it imports function_app.py, and an import-time failure would unregister every
function. A lock makes a concurrent first use create one client, not two (asyncpg #320).
"""

from __future__ import annotations

import asyncio
import atexit
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from azure.storage.blob.aio import BlobServiceClient
from redis.asyncio import BlockingConnectionPool, Redis

from shared.auth.passwords import PasswordHasher
from shared.cache.breaker import CircuitBreaker
from shared.cache.cache import Cache
from shared.cache.ratelimit import RateLimiter
from shared.config import Settings, get_settings
from shared.db.database import Database

T = TypeVar("T")


class _Slot(Generic[T]):
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.value: T | None = None


class LazyResource(Generic[T]):
    """One instance per event loop, created by `factory` on first `get()` and closed by `closer`.

    The worker runs one loop, so in Azure this is one instance per process. Tests also drive the
    app from the local host's loop and their own, and each loop gets clients bound to it.
    """

    def __init__(self, factory: Callable[[], Awaitable[T]], closer: Callable[[T], Awaitable[None]]) -> None:
        self._factory = factory
        self._closer = closer
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Slot[T]] = weakref.WeakKeyDictionary()

    def loops(self) -> list[asyncio.AbstractEventLoop]:
        return [loop for loop, slot in list(self._slots.items()) if slot.value is not None]

    async def get(self) -> T:
        slot = self._slots.setdefault(asyncio.get_running_loop(), _Slot())
        if slot.value is None:
            async with slot.lock:
                if slot.value is None:
                    slot.value = await self._factory()
        return slot.value

    async def close(self) -> None:
        slot = self._slots.pop(asyncio.get_running_loop(), None)
        if slot is not None and slot.value is not None:
            await self._closer(slot.value)


async def _make_database() -> Database:
    return await Database.connect(get_settings())


async def _close_database(database: Database) -> None:
    await database.close()


def make_redis(settings: Settings) -> Redis:
    # A blocking pool waits for a free connection instead of raising MaxConnectionsError (redis-py #2517);
    # short socket timeouts make an unreachable Redis fail fast into the cache's breaker.
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_pool_timeout_s,
        socket_connect_timeout=settings.redis_connect_timeout_s,
        socket_timeout=settings.redis_socket_timeout_s,
    )
    return Redis(connection_pool=pool)


async def _make_redis() -> Redis:
    return make_redis(get_settings())


async def _close_redis(client: Redis) -> None:
    await client.aclose(close_connection_pool=True)


async def _make_blob_service() -> BlobServiceClient:
    settings = get_settings()
    if settings.storage_connection_string:
        return BlobServiceClient.from_connection_string(settings.storage_connection_string)
    from azure.identity.aio import DefaultAzureCredential

    assert settings.storage_account_url is not None  # guaranteed by Settings validation
    return BlobServiceClient(settings.storage_account_url, credential=DefaultAzureCredential())


async def _close_blob_service(client: BlobServiceClient) -> None:
    await client.close()


async def _make_cache() -> Cache:
    settings = get_settings()
    return Cache(
        redis_client.get,
        CircuitBreaker(cooldown_s=settings.cache_breaker_cooldown_s),
        local_ttl_s=settings.cache_local_ttl_s,
    )


async def _close_nothing(_: object) -> None:
    return None


async def _make_password_hasher() -> PasswordHasher:
    return PasswordHasher.from_settings(get_settings())


async def _close_password_hasher(hasher: PasswordHasher) -> None:
    hasher.close()


async def _make_rate_limiter() -> RateLimiter:
    settings = get_settings()
    return RateLimiter(redis_client.get, CircuitBreaker(settings.cache_breaker_cooldown_s, name="redis (rate limits)"))


database = LazyResource(_make_database, _close_database)
redis_client = LazyResource(_make_redis, _close_redis)
blob_service_client = LazyResource(_make_blob_service, _close_blob_service)
shared_cache = LazyResource(_make_cache, _close_nothing)
password_hasher = LazyResource(_make_password_hasher, _close_password_hasher)
rate_limiter = LazyResource(_make_rate_limiter, _close_nothing)
_ALL: tuple[LazyResource[Any], ...] = (
    rate_limiter,
    password_hasher,
    shared_cache,
    blob_service_client,
    redis_client,
    database,
)


async def get_database() -> Database:
    return await database.get()


async def get_redis() -> Redis:
    return await redis_client.get()


async def get_blob_service() -> BlobServiceClient:
    return await blob_service_client.get()


async def get_cache() -> Cache:
    return await shared_cache.get()


async def get_password_hasher() -> PasswordHasher:
    """The bcrypt executor: BCRYPT_THREADS threads, BCRYPT_QUEUE_SIZE waiting, the rest shed with 503."""
    return await password_hasher.get()


async def get_rate_limiter() -> RateLimiter:
    return await rate_limiter.get()


async def close_resources() -> None:
    """Close every client this process created (host shutdown, end of a test session)."""
    for resource in _ALL:
        await resource.close()


@atexit.register
def _close_at_exit() -> None:
    # The worker gives apps no shutdown hook, but its loop outlives the invocations: close what
    # each still-usable loop created so servers see a clean goodbye instead of a dropped socket.
    loops = {loop for resource in _ALL for loop in resource.loops()}
    for loop in loops:
        if not loop.is_closed() and not loop.is_running():
            loop.run_until_complete(close_resources())
