"""What Redis holds after the bookings and stats reads: the original names `bookings:student:{id}` and
`bookings:mentor:{id}` (as each key's hash tag) with the 2-minute TTL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from bookings_helpers import Client, MakeMentor, MakeUser, seed_booking, slot
from redis.asyncio import Redis


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def entries(redis: Redis, namespace: str) -> dict[str, int]:
    """The namespace's cached values (not its generation counter or locks) and their TTL in seconds."""
    keys = [key.decode() async for key in redis.scan_iter(match=f"{{{namespace}}}:g*")]
    return {key: await redis.ttl(key) for key in keys if not key.endswith(":gen")}


async def test_list_and_stats_reads_are_cached_under_the_original_names_for_two_minutes(
    api: Client, db: asyncpg.Connection, redis: Redis, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    student, mentor = await make_user("student"), await make_mentor()
    await seed_booking(db, student=student, mentor=mentor, start=slot(3, 10))
    for user, stats in ((student, "students/me/stats"), (mentor, "mentors/me/stats")):
        namespace = f"bookings:{user.role}:{user.id}"
        assert await entries(redis, namespace) == {}
        assert (await api.call("GET", "bookings", user=user)).status == 200
        listed = await entries(redis, namespace)
        assert len(listed) == 1 and all(":list:" in key for key in listed), listed
        assert (await api.call("GET", stats, user=user)).status == 200
        cached = await entries(redis, namespace)
        assert {key.rsplit(":", 1)[1] for key in cached if key not in listed} == {"stats"}, cached
        # EX 120 set by this read; a second-resolution TTL just after it can only have fallen a little.
        assert all(60 < ttl <= 120 for ttl in cached.values()), cached
