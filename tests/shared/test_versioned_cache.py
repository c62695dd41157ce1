"""Generation-keyed cache entries: never stale after an acknowledged write, no stampede, fallback.

Several `Cache` objects on one Redis stand for several worker processes: what one process's write
bumps, every other process must stop serving.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from shared.cache import generations
from shared.cache.breaker import CircuitBreaker
from shared.cache.cache import Cache, Expiring
from shared.cache.generations import GENERATION_TTL_MS, Entry, Keys, refresh_early, unpack
from shared.config import load_settings
from shared.resources import make_redis
from tests.shared.test_cache import CountingLoader, redis_for, unused_port

TTL = 300


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    # These tests count loads and lock waits; a socket timeout on a loaded machine would open the
    # breaker and add a fallback load, which is a different test's subject.
    redis = redis_for(redis_url, REDIS_SOCKET_TIMEOUT_SECONDS="5", REDIS_POOL_TIMEOUT_SECONDS="5")
    yield redis
    await redis.aclose(close_connection_pool=True)


def process(redis: Redis, **kwargs: Any) -> Cache:
    async def provide() -> Redis:
        return redis

    return Cache(provide, CircuitBreaker(cooldown_s=kwargs.pop("cooldown_s", 0.1)), local_ttl_s=5, **kwargs)


def namespace() -> str:
    return f"test:{uuid.uuid4().hex[:8]}"


class Database:
    """A row whose version a writer bumps; loads read it, optionally slowly or when released."""

    def __init__(self) -> None:
        self.version = 0
        self.loads = 0
        self.snapshot_taken = asyncio.Event()

    def loader(self, delay_s: float = 0.0, gate: asyncio.Event | None = None) -> CountingLoader:
        database = self

        class Load(CountingLoader):
            async def __call__(self) -> bytes:
                database.loads += 1
                seen = database.version  # the snapshot the query sees
                database.snapshot_taken.set()
                if gate is not None:
                    await gate.wait()
                await asyncio.sleep(delay_s)
                return str(seen).encode()

        return Load()


async def test_a_miss_is_stored_under_the_generation_and_then_hits(client: Redis) -> None:
    cache, ns, load = process(client), namespace(), CountingLoader(b"v1")
    assert await cache.get_or_load_versioned(ns, "all", TTL, load) == b"v1"
    assert await cache.get_or_load_versioned(ns, "all", TTL, load) == b"v1"
    assert load.calls == 1
    assert (cache.stats.hits, cache.stats.misses) == (1, 1)
    generation = (await client.get(Keys(ns, "all").generation)).decode()
    stored = await client.get(Keys(ns, "all").entry(generation))
    assert unpack(stored)[1] == b"v1"
    assert TTL - 5 <= await client.ttl(Keys(ns, "all").entry(generation)) <= TTL


async def test_an_expiring_value_is_kept_only_until_it_goes_stale(client: Redis) -> None:
    cache, ns = process(client), namespace()

    async def expiring(ttl_s: float) -> bytes | Expiring:
        return Expiring(b"counted", ttl_s)

    async def lifetime_ms(variant: str) -> int:
        generation = (await client.get(Keys(ns, variant).generation)).decode()
        ttl_ms: int = await client.pttl(Keys(ns, variant).entry(generation))
        return ttl_ms

    await cache.get_or_load_versioned(ns, "soon", TTL, lambda: expiring(30.5))
    assert 0 < await lifetime_ms("soon") <= 30_500
    await cache.get_or_load_versioned(ns, "later", TTL, lambda: expiring(TTL * 10))
    assert TTL * 1000 - 5_000 < await lifetime_ms("later") <= TTL * 1000  # never past the caller's TTL

    stale = CountingLoader()
    for _ in range(2):  # stale when loaded: not stored, and the lock is given back for the next reader
        assert await cache.get_or_load_versioned(ns, "stale", TTL, lambda: expiring(-1)) == b"counted"
        assert await lifetime_ms("stale") == -2
    assert await cache.get_or_load_versioned(ns, "stale", TTL, stale) == b"v1"
    assert stale.calls == 1 and cache.stats.lock_waits == 0


async def test_a_bump_in_one_process_is_seen_by_the_next_read_in_another(client: Redis) -> None:
    reader, writer, ns = process(client), process(client), namespace()
    await reader.get_or_load_versioned(ns, "all", TTL, CountingLoader(b"old"))
    await reader.get_or_load_versioned(ns, "page2", TTL, CountingLoader(b"old2"))
    await writer.bump(ns)
    assert await reader.get_or_load_versioned(ns, "all", TTL, CountingLoader(b"new")) == b"new"
    assert await reader.get_or_load_versioned(ns, "page2", TTL, CountingLoader(b"new2")) == b"new2"


async def test_delete_after_write_lets_a_slow_loader_restore_stale_data_and_generations_do_not(
    client: Redis,
) -> None:
    """The race of performance.md §5.1, made deterministic with a gate on the slow load."""
    for versioned in (False, True):
        database, ns = Database(), namespace()
        reader, writer = process(client), process(client)
        gate = asyncio.Event()

        async def read(cache: Cache, load: CountingLoader, ns: str = ns, versioned: bool = versioned) -> bytes:
            if versioned:
                return await cache.get_or_load_versioned(ns, "all", TTL, load)
            return await cache.get_or_load(ns, TTL, load)

        slow = asyncio.create_task(read(reader, database.loader(gate=gate)))
        await database.snapshot_taken.wait()  # the slow reader has read version 0 and is still working
        database.version = 1  # the write commits...
        await (writer.bump(ns) if versioned else writer.invalidate(ns))  # ...and is acknowledged
        gate.set()
        assert await slow == b"0"  # it began before the write: either answer is allowed
        after = await read(writer, database.loader())
        if versioned:
            assert after == b"1"
        else:
            assert after == b"0", "delete-after-write no longer shows the race this test documents"


async def test_racing_writes_against_reads_never_returns_a_value_older_than_an_acknowledged_write(
    client: Redis,
) -> None:
    database, ns = Database(), namespace()
    processes = [process(client) for _ in range(4)]
    acknowledged = 0
    stale: list[tuple[int, int]] = []
    stop = asyncio.Event()

    async def writer() -> None:
        nonlocal acknowledged
        for _ in range(100):
            database.version += 1  # commit
            version = database.version
            await random.choice(processes).bump(ns)
            acknowledged = version  # the client has its answer now
            await asyncio.sleep(random.uniform(0, 0.02))
        stop.set()

    async def reader(cache: Cache) -> int:
        reads = 0
        while not stop.is_set():
            floor = acknowledged
            value = int(await cache.get_or_load_versioned(ns, "all", TTL, database.loader(random.uniform(0, 0.004))))
            if value < floor:
                stale.append((value, floor))
            reads += 1
        return reads

    results = await asyncio.gather(writer(), *(reader(cache) for cache in processes for _ in range(10)))
    assert sum(r for r in results if r is not None) > 500
    assert stale == []
    assert sum(cache.stats.hits for cache in processes) > 0  # the cache was used, not bypassed


async def test_concurrent_misses_in_many_processes_run_one_load(client: Redis) -> None:
    database, ns = Database(), namespace()
    # A waiter gives up and loads itself after lock_wait_s; on a machine busy enough to stall this
    # loop for the default 2 s that would be a second load, which is not what this test is about.
    processes = [process(client, lock_wait_s=60) for _ in range(5)]
    loader = database.loader(delay_s=0.05)
    values = await asyncio.gather(
        *(c.get_or_load_versioned(ns, "all", TTL, loader) for c in processes for _ in range(40))
    )
    assert set(values) == {b"0"}
    assert database.loads == 1
    assert sum(c.stats.lock_waits for c in processes) == 4  # one waiter per other process
    database.version = 1
    await processes[0].bump(ns)
    values = await asyncio.gather(
        *(c.get_or_load_versioned(ns, "all", TTL, loader) for c in processes for _ in range(40))
    )
    assert set(values) == {b"1"}
    assert database.loads == 2


class CountingRedis(Redis):
    """The real client, sharing `redis`'s pool, that records the commands it sends: one round trip
    each (the cache sends no pipelines), with a script call named by its script's SHA1."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(connection_pool=redis.connection_pool)
        self.sent: list[str] = []

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.sent.append(str(args[1]) if args[0] == "EVALSHA" else str(args[0]))
        return await super().execute_command(*args, **options)


async def wait_until(condition: Callable[[], Awaitable[bool]], limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while not await condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_a_miss_costs_two_round_trips_and_a_hit_one(client: Redis) -> None:
    counting = CountingRedis(client)
    cache, ns = process(counting), namespace()
    await cache.get_or_load_versioned(namespace(), "warm", TTL, CountingLoader())  # loads the scripts into Redis
    counting.sent.clear()
    assert await cache.get_or_load_versioned(ns, "all", TTL, CountingLoader(b"v1")) == b"v1"
    assert counting.sent == [generations.READ.sha, generations.STORE.sha]  # the read takes the lock
    counting.sent.clear()
    assert await cache.get_or_load_versioned(ns, "all", TTL, CountingLoader(b"v2")) == b"v1"
    assert counting.sent == [generations.READ.sha]
    generation = (await client.get(Keys(ns, "all").generation)).decode()
    assert not await client.exists(Keys(ns, "all").lock(generation))  # the store released it


async def test_concurrent_misses_in_one_process_take_one_lock_and_release_it(client: Redis) -> None:
    counting = CountingRedis(client)
    cache, ns, database = process(counting), namespace(), Database()
    values = await asyncio.gather(
        *(cache.get_or_load_versioned(ns, "all", TTL, database.loader(delay_s=0.05)) for _ in range(30))
    )
    assert set(values) == {b"0"} and database.loads == 1
    assert cache.stats.lock_waits == 0  # every read found the lock free or this process's
    assert counting.sent.count(generations.STORE.sha) == 1
    generation = (await client.get(Keys(ns, "all").generation)).decode()
    assert not await client.exists(Keys(ns, "all").lock(generation))


async def test_a_process_waiting_on_the_lock_gets_the_value_its_holder_stores(client: Redis) -> None:
    database, ns, gate = Database(), namespace(), asyncio.Event()
    holder, waiter = process(client), process(client, lock_wait_s=60)
    holding = asyncio.create_task(holder.get_or_load_versioned(ns, "all", TTL, database.loader(gate=gate)))
    await database.snapshot_taken.wait()  # the holder's read took the lock and its load is running
    waiter_load = CountingLoader(b"waiter's own load")
    waiting = asyncio.create_task(waiter.get_or_load_versioned(ns, "all", TTL, waiter_load))

    async def waiting_on_the_lock() -> bool:
        return waiter.stats.lock_waits == 1

    await wait_until(waiting_on_the_lock)
    assert not waiting.done()
    database.version = 1  # the holder's load saw version 0; the waiter must get that, not load itself
    gate.set()
    assert await holding == b"0"
    assert await waiting == b"0"
    assert waiter_load.calls == 0 and database.loads == 1
    assert (waiter.stats.misses, holder.stats.lock_waits) == (1, 0)


async def test_a_lock_left_by_a_crashed_holder_expires_and_the_entry_is_recomputed(client: Redis) -> None:
    cache, ns = process(client, lock_wait_s=60), namespace()
    keys = Keys(ns, "all")
    # A process whose read took the lock (for 200 ms) and that died before storing the entry.
    crashed = generations.parse_read(
        await generations.READ(client, [keys.generation], keys.read_args("crashed-process", 200))
    )
    assert crashed.value is None and crashed.locked
    lock = keys.lock(crashed.generation)
    assert await client.get(lock) == b"crashed-process"

    async def lock_expired() -> bool:
        return not await client.exists(lock)

    await wait_until(lock_expired)
    load = CountingLoader(b"recomputed")
    assert await cache.get_or_load_versioned(ns, "all", TTL, load) == b"recomputed"
    assert load.calls == 1 and cache.stats.lock_waits == 0  # no wait: the read took the free lock
    assert unpack(await client.get(keys.entry(crashed.generation)))[1] == b"recomputed"
    assert not await client.exists(lock)


async def test_a_lock_a_later_read_took_while_the_first_waited_is_released_by_the_load(client: Redis) -> None:
    """The first miss waits on another process's lock; that process gives the lock up without a
    value (its load failed) and a second miss here takes it, then shares the first one's load. The
    lock must not outlive that load, or every other process would wait on it for nothing."""
    cache, ns = process(client, lock_wait_s=0.3), namespace()
    keys = Keys(ns, "all")
    generation = generations.parse_read(await generations.READ(client, [keys.generation], keys.read_args("x", 1)))
    lock = keys.lock(generation.generation)
    await client.set(lock, "other-process", px=60_000)
    load = CountingLoader(b"v", delay_s=0.05)
    first = asyncio.create_task(cache.get_or_load_versioned(ns, "all", TTL, load))

    async def first_waits() -> bool:
        return cache.stats.lock_waits == 1

    await wait_until(first_waits)
    await client.delete(lock)  # the other process released it without storing
    second = asyncio.create_task(cache.get_or_load_versioned(ns, "all", TTL, load))

    async def second_took_the_lock() -> bool:
        return bool(await client.exists(lock))

    await wait_until(second_took_the_lock)
    assert await asyncio.gather(first, second) == [b"v", b"v"]
    assert load.calls == 1
    assert not await client.exists(lock)


async def test_a_failed_load_releases_the_lock_for_the_next_process(client: Redis) -> None:
    failing, next_process, ns = process(client), process(client, lock_wait_s=60), namespace()

    async def fail() -> bytes:
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        await failing.get_or_load_versioned(ns, "all", TTL, fail)
    load = CountingLoader(b"v")
    assert await next_process.get_or_load_versioned(ns, "all", TTL, load) == b"v"
    assert load.calls == 1 and next_process.stats.lock_waits == 0


async def test_a_hot_entry_about_to_expire_is_refreshed_once_while_others_get_the_current_value(
    client: Redis,
) -> None:
    database, ns = Database(), namespace()
    processes = [process(client, xfetch_beta=1000.0) for _ in range(3)]
    await processes[0].get_or_load_versioned(ns, "all", TTL, database.loader())
    generation = (await client.get(Keys(ns, "all").generation)).decode()
    await client.pexpire(Keys(ns, "all").entry(generation), 500)  # nearly expired
    database.version = 7  # e.g. a change that needs no invalidation, such as a new booking count
    values = await asyncio.gather(
        *(c.get_or_load_versioned(ns, "all", TTL, database.loader(delay_s=0.05)) for c in processes for _ in range(30))
    )
    assert database.loads == 2  # the first fill and exactly one early refresh
    assert sum(c.stats.early_refreshes for c in processes) == 1
    # The refresher gets the new value; readers meanwhile get the current one instead of waiting
    # (readers that start after the refresh is stored may already see the new value).
    assert set(values) == {b"0", b"7"}
    assert await client.ttl(Keys(ns, "all").entry(generation)) > TTL - 5  # the refresh reset the TTL


def test_xfetch_refreshes_more_eagerly_as_expiry_nears() -> None:
    def probability(ttl_ms: int) -> float:
        entry = Entry("1", b"x", recompute_ms=50, ttl_ms=ttl_ms)
        rng = random.Random(7)
        return sum(refresh_early(entry, 1.0, rng.random()) for _ in range(10_000)) / 10_000

    assert probability(300_000) == 0
    assert probability(1) > 0.95
    assert 0 < probability(100) < probability(20) < 1
    assert not refresh_early(Entry("1", b"x", 50, -1), 1.0, 0.0001)  # a key without expiry


async def test_a_dead_lock_holder_delays_readers_only_up_to_the_bounded_wait(client: Redis) -> None:
    cache, ns = process(client, lock_wait_s=0.1), namespace()
    await cache.get_or_load_versioned(ns, "seed", TTL, CountingLoader())  # creates the generation
    generation = (await client.get(Keys(ns, "all").generation)).decode()
    await client.set(Keys(ns, "all").lock(generation), "crashed-process", px=60_000)
    assert await cache.get_or_load_versioned(ns, "all", TTL, CountingLoader(b"v")) == b"v"
    assert cache.stats.lock_waits == 1


async def test_a_lost_generation_key_comes_back_larger_and_never_reexposes_old_entries(client: Redis) -> None:
    cache, ns = process(client), namespace()
    await cache.get_or_load_versioned(ns, "all", TTL, CountingLoader(b"old"))
    before = int(await client.get(Keys(ns, "all").generation))
    await client.delete(Keys(ns, "all").generation)  # evicted, say
    assert await cache.get_or_load_versioned(ns, "all", TTL, CountingLoader(b"new")) == b"new"
    assert int(await client.get(Keys(ns, "all").generation)) > before
    await cache.bump(ns)
    assert int(await client.get(Keys(ns, "all").generation)) > before + 1


async def test_generation_keys_expire_so_one_per_login_email_cannot_fill_redis(client: Redis) -> None:
    # Per-email namespaces (the login cache) create a generation key for every address ever tried;
    # a lost key is harmless (above), so each one lives a day past its last bump, never forever.
    cache, read_only, bumped = process(client), namespace(), namespace()
    await cache.get_or_load_versioned(read_only, "all", TTL, CountingLoader(b"v"))
    await cache.bump(bumped)
    for ns in (read_only, bumped):
        ttl_ms = await client.pttl(Keys(ns, "all").generation)
        assert TTL * 1000 < ttl_ms <= GENERATION_TTL_MS


async def test_while_redis_is_down_public_values_come_from_the_process_and_bumps_clear_them() -> None:
    redis = redis_for(f"redis://127.0.0.1:{unused_port()}/0")
    cache, ns, load = process(redis, cooldown_s=60), namespace(), CountingLoader(b"v1")
    try:
        values = await asyncio.gather(
            *(cache.get_or_load_versioned(ns, "all", TTL, load, public=True) for _ in range(20))
        )
        assert values == [b"v1"] * 20
        assert await cache.get_or_load_versioned(ns, "all", TTL, load, public=True) == b"v1"
        assert load.calls == 1 and cache.stats.local_hits >= 1
        await cache.bump(ns)
        assert await cache.get_or_load_versioned(ns, "all", TTL, CountingLoader(b"v2"), public=True) == b"v2"
        private = CountingLoader(b"p")
        for _ in range(3):
            await cache.get_or_load_versioned(ns, "private", TTL, private)
        assert private.calls == 3  # never kept in process
    finally:
        await redis.aclose(close_connection_pool=True)


async def test_a_bump_missed_during_an_outage_is_replayed_when_redis_answers(stack: Any, redis_url: str) -> None:
    redis = redis_for(redis_url)
    cache, ns = process(redis, cooldown_s=0.1), namespace()
    try:
        await cache.get_or_load_versioned(ns, "all", TTL, CountingLoader(b"stale"))
        generation = await redis.get(Keys(ns, "all").generation)
        stored = await redis.get(Keys(ns, "all").entry(generation.decode()))
        stack.redis.stop()
        try:
            await cache.bump(ns)  # the write committed; Redis could not hear about it
            assert cache.stats.redis_errors == 2  # two tries, then kept for the replay
        finally:
            stack.redis.start()
        # A partitioned Redis would still hold the old generation and entry; recreate them.
        await redis.set(Keys(ns, "all").generation, generation)
        await redis.set(Keys(ns, "all").entry(generation.decode()), stored)
        await asyncio.sleep(0.15)
        assert await cache.get_or_load_versioned(ns, "all", TTL, CountingLoader(b"fresh")) == b"fresh"
    finally:
        await redis.aclose(close_connection_pool=True)


async def test_a_bump_reaches_redis_while_this_process_skips_it_after_one_error(client: Redis) -> None:
    """One socket timeout opens the writer's breaker, but Redis is up and other processes read it:
    the write's bump must still reach it before the write is acknowledged."""
    reader, writer, ns = process(client), process(client, cooldown_s=60), namespace()
    assert await reader.get_or_load_versioned(ns, "all", TTL, CountingLoader(b"old")) == b"old"
    writer._breaker.record_failure(TimeoutError())  # a transient timeout earlier in the writer process
    await writer.bump(ns)  # the write is acknowledged after this returns
    assert await reader.get_or_load_versioned(ns, "all", TTL, CountingLoader(b"new")) == b"new"
    assert writer.redis_available  # Redis answered, so the writer's circuit closed


async def test_a_bump_reaches_redis_while_this_process_pool_stays_busy(client: Redis, redis_url: str) -> None:
    """Every pooled connection of the writer is taken (overload, not an outage) and stays taken:
    the bump still reaches Redis, on a connection of its own, before the write is acknowledged."""
    busy = redis_for(redis_url, REDIS_MAX_CONNECTIONS="1", REDIS_POOL_TIMEOUT_SECONDS="0.05")
    reader, writer, ns = process(client), process(busy), namespace()
    try:
        assert await reader.get_or_load_versioned(ns, "all", TTL, CountingLoader(b"old")) == b"old"
        blocker = asyncio.create_task(busy.blpop([f"{ns}:release"], timeout=30))  # holds the only connection
        await asyncio.sleep(0.02)
        await writer.bump(ns)
        assert await reader.get_or_load_versioned(ns, "all", TTL, CountingLoader(b"new")) == b"new"
        await client.lpush(f"{ns}:release", b"go")
        await blocker
        assert writer.stats.redis_busy >= 1 and writer.stats.redis_errors == 0 and writer.redis_available
    finally:
        await busy.aclose(close_connection_pool=True)


async def test_hit_and_miss_counts_are_logged(client: Redis, caplog: pytest.LogCaptureFixture) -> None:
    cache, ns = process(client, stats_log_interval_s=0.0), namespace()
    with caplog.at_level(logging.INFO, logger="shared.cache.cache"):
        await cache.get_or_load_versioned(ns, "all", TTL, CountingLoader())
        await cache.get_or_load_versioned(ns, "all", TTL, CountingLoader())
    summaries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("cache stats")]
    assert summaries and "hits=0 misses=1" in summaries[-1]


async def test_an_exhausted_redis_pool_is_overload_not_an_outage(stack: Any, redis_url: str) -> None:
    """Waiting too long for a pooled connection sends the read to the database: the breaker stays
    closed and the in-process copy, which other instances' writes cannot reach, is not used."""
    env = {
        "DATABASE_URL": "postgresql://x@127.0.0.1/x",
        "REDIS_URL": redis_url,
        "AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
        "REDIS_MAX_CONNECTIONS": "1",
        "REDIS_POOL_TIMEOUT_SECONDS": "0.05",
    }
    redis = make_redis(load_settings(env))
    cache, ns = process(redis), namespace()
    try:
        await cache.get_or_load_versioned(ns, "all", TTL, CountingLoader(b"v1"), public=True)
        blocker = asyncio.create_task(redis.blpop([f"{ns}:nothing"], timeout=0.3))  # holds the only connection
        await asyncio.sleep(0.02)
        load = CountingLoader(b"from-db")
        for _ in range(2):
            assert await cache.get_or_load_versioned(ns, "all", TTL, load, public=True) == b"from-db"
        await cache.bump(ns)  # a write's bump does not give up on a busy pool (it takes a connection of its own)
        await blocker
        assert load.calls == 2 and cache.stats.local_hits == 0
        assert cache.stats.redis_busy >= 3 and cache.stats.redis_errors == 0
        assert cache.redis_available
        assert await cache.get_or_load_versioned(ns, "all", TTL, CountingLoader(b"v2"), public=True) == b"v2"
    finally:
        await redis.aclose(close_connection_pool=True)
