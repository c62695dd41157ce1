"""`upcoming` changes by the clock alone: when a counted booking starts, no write bumps the cache.
The cached stats must therefore expire by then, not after the full 2 minutes.

Service-level, with `now` pinned: the entry's lifetime in Redis is what the tests read.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from booking_history import History, User
from redis.asyncio import Redis

from shared.bookings.caching import BOOKINGS_TTL_S, mentor_namespace, student_namespace
from shared.cache.cache import Cache
from shared.cache.generations import Keys
from shared.db.database import Database
from shared.stats import service
from shared.stats.service import STATS_VARIANT
from tests.shared.test_cache import redis_for

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = redis_for(redis_url)
    yield client
    await client.aclose(close_connection_pool=True)


async def stats_lifetime_ms(redis: Redis, user: User) -> int:
    """How long the user's cached stats have left, in ms (-2: not cached)."""
    namespace = student_namespace(user.id) if user.role == "student" else mentor_namespace(user.id)
    keys = Keys(namespace, STATS_VARIANT)
    generation = await redis.get(keys.generation)
    assert generation is not None
    lifetime: int = await redis.pttl(keys.entry(generation.decode()))
    return lifetime


async def read(database: Database, cache: Cache, user: User, now: datetime) -> dict[str, Any]:
    if user.role == "student":
        body = await service.student_stats(database, cache, user.id, now=now)
    else:
        body = await service.mentor_stats(database, cache, user.id, now=now)
    figures: dict[str, Any] = json.loads(body)
    return figures


async def test_the_stats_expire_when_the_next_counted_booking_starts(
    history: History, app_database: Database, app_cache: Cache, redis: Redis
) -> None:
    student, mentor = await history.user("student"), await history.mentor()
    # Not counted, so they must not shorten the entry: a cancelled booking and one that has started.
    await history.booking(student, mentor, status="cancelled", start=NOW + timedelta(seconds=10))
    await history.booking(student, mentor, status="confirmed", start=NOW - timedelta(hours=2))
    await history.booking(student, mentor, status="pending_payment", start=NOW + timedelta(seconds=50))
    await history.booking(student, mentor, status="confirmed", start=NOW + timedelta(hours=2))

    for user in (student, mentor):
        assert (await read(app_database, app_cache, user, NOW))["upcoming"] == 2
        lifetime = await stats_lifetime_ms(redis, user)
        assert 10_000 < lifetime <= 50_000, lifetime


async def test_a_booking_starting_during_the_load_leaves_nothing_cached(
    history: History, app_database: Database, app_cache: Cache, redis: Redis
) -> None:
    student, mentor = await history.user("student"), await history.mentor()
    await history.booking(student, mentor, status="confirmed", start=NOW + timedelta(microseconds=1))

    for user in (student, mentor):
        assert (await read(app_database, app_cache, user, NOW))["upcoming"] == 1
        assert await stats_lifetime_ms(redis, user) == -2
        # A minute later, with no write in between, the booking has started.
        assert (await read(app_database, app_cache, user, NOW + timedelta(minutes=1)))["upcoming"] == 0


async def test_stats_without_a_booking_to_start_soon_keep_the_full_ttl(
    history: History, app_database: Database, app_cache: Cache, redis: Redis
) -> None:
    student, mentor = await history.user("student"), await history.mentor()
    await history.booking(student, mentor, status="confirmed", start=NOW + timedelta(days=2))
    idle_student, idle_mentor = await history.user("student"), await history.mentor()

    for user in (student, mentor, idle_student, idle_mentor):
        await read(app_database, app_cache, user, NOW)
        assert BOOKINGS_TTL_S * 1000 // 2 < await stats_lifetime_ms(redis, user) <= BOOKINGS_TTL_S * 1000
