"""Idempotency-Key compares the validated request, not its text: one instant written with another
offset is the same request (a replay), and concurrent requests with one key but different bodies
book once, the rest being refused as a reused key."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta, timezone

import asyncpg
from bookings_helpers import Client, MakeMentor, MakeUser, User, is_problem, slot

KOLKATA = timezone(timedelta(hours=5, minutes=30))


async def bookings_of(db: asyncpg.Connection, student: User) -> int:
    n: int = await db.fetchval("SELECT count(*) FROM bookings WHERE student_id = $1", student.id)
    return n


async def test_the_same_instant_at_another_offset_is_a_replay(
    api: Client, db: asyncpg.Connection, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    student, mentor = await make_user("student"), await make_mentor()
    headers = {"Idempotency-Key": f"offsets-{uuid.uuid4()}"}
    start = slot(3, 10)
    spellings = [
        start.isoformat().replace("+00:00", "Z"),
        start.astimezone(KOLKATA).isoformat(),  # 15:30+05:30
        start.isoformat(),  # +00:00
        start.astimezone(timezone(-timedelta(hours=7))).isoformat(timespec="microseconds"),
    ]
    replies = [
        await api.call(
            "POST",
            "bookings",
            {"mentor_id": str(mentor.id), "start": spelling, "length_minutes": 60},
            user=student,
            headers=headers,
        )
        for spelling in spellings
    ]
    assert [reply.status for reply in replies] == [201] * len(spellings), [r.body for r in replies]
    assert "Idempotent-Replayed" not in replies[0].headers
    assert all(reply.headers.get("Idempotent-Replayed") == "true" for reply in replies[1:])
    assert all(reply.body == replies[0].body for reply in replies)
    assert await bookings_of(db, student) == 1


async def test_concurrent_requests_with_one_key_and_different_bodies_book_once(
    api: Client, db: asyncpg.Connection, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    student, mentor = await make_user("student"), await make_mentor()
    headers = {"Idempotency-Key": f"racing-{uuid.uuid4()}"}
    bodies = [  # each would succeed on its own: a different hour, or the same hour with other notes
        {"mentor_id": str(mentor.id), "start": slot(4, 8 + n % 10).isoformat(), "length_minutes": 60, "notes": str(n)}
        for n in range(20)
    ]
    replies = await asyncio.gather(
        *(api.call("POST", "bookings", body, user=student, headers=headers) for body in bodies)
    )
    statuses = sorted(reply.status for reply in replies)
    assert statuses == [201] + [422] * (len(bodies) - 1), [r.body for r in replies if r.status not in (201, 422)]
    assert all(is_problem(reply, 422, "idempotency_key_reused") for reply in replies if reply.status == 422)
    assert await bookings_of(db, student) == 1
    stored = await db.fetchval("SELECT count(*) FROM idempotency_keys WHERE user_id = $1", student.id)
    assert stored == 1
