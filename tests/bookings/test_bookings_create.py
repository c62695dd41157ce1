"""POST /api/bookings over HTTP: the slot must be offered, the price and policy are snapshotted,
and the exclusion constraints turn every overlap into 409, also under real concurrency."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from bookings_helpers import POLICY, Client, MakeMentor, MakeUser, User, insert_user, is_problem, seed_booking, slot

from shared.bookings import service
from shared.bookings.models import BookingCreate
from shared.bookings.repository import OverlapRace, SlotTaken
from shared.cache.cache import Cache
from shared.db.database import Database


def request(mentor: User, start: datetime, length: int = 60, **extra: Any) -> dict[str, Any]:
    return {"mentor_id": str(mentor.id), "start": start.isoformat(), "length_minutes": length, **extra}


async def test_a_student_books_an_offered_slot_and_gets_the_price_and_policy_snapshot(
    api: Client, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    student, mentor = await make_user("student"), await make_mentor(rate_minor=99_999)
    start = slot(3, 10)
    before = datetime.now(UTC)
    reply = await api.call("POST", "bookings", request(mentor, start, 30, notes="Graphs, please"), user=student)
    assert reply.status == 201, reply.body
    booking = reply.body
    assert booking["status"] == "pending_payment"
    assert booking["student_id"] == str(student.id) and booking["mentor_id"] == str(mentor.id)
    assert datetime.fromisoformat(booking["start"]) == start
    assert datetime.fromisoformat(booking["end"]) == start + timedelta(minutes=30)
    assert booking["length_minutes"] == 30 and booking["notes"] == "Graphs, please"
    # 99 999 per hour for 30 minutes is 49 999.5: rounded half up.
    assert booking["price"] == {"amount_minor": 50_000, "currency": "INR"}
    assert booking["commission_bps"] == 1500
    assert booking["policy"] == POLICY.snapshot()
    hold = datetime.fromisoformat(booking["hold_expires_at"])
    assert before + timedelta(minutes=15) <= hold <= datetime.now(UTC) + timedelta(minutes=15)
    assert booking["cancellation"] is None and booking["refund_due_minor"] is None
    assert booking["confirmed_at"] is None
    assert "Idempotent-Replayed" not in reply.headers


@pytest.mark.parametrize(("rate", "length"), [(0, 60), (1, 15)])  # 1 paisa an hour for 15 minutes rounds to 0
async def test_a_free_booking_is_confirmed_at_once_and_never_waits_for_a_payment(
    rate: int,
    length: int,
    api: Client,
    db: asyncpg.Connection,
    app_database: Database,
    app_cache: Cache,
    make_user: MakeUser,
    make_mentor: MakeMentor,
) -> None:
    student, mentor = await make_user("student"), await make_mentor(rate_minor=rate, lengths=(15, 60))
    before = datetime.now(UTC)
    reply = await api.call("POST", "bookings", request(mentor, slot(3, 10), length), user=student)
    assert reply.status == 201, reply.body
    booking = reply.body
    assert booking["price"] == {"amount_minor": 0, "currency": "INR"}
    assert (booking["status"], booking["hold_expires_at"]) == ("confirmed", None)
    assert before <= datetime.fromisoformat(booking["confirmed_at"]) <= datetime.now(UTC)
    # The housekeeping sweep, however late, leaves it alone.
    assert await service.expire_stale_holds(app_database, app_cache, now=slot(30, 10)) >= 0
    assert await db.fetchval("SELECT status FROM bookings WHERE id = $1", uuid.UUID(booking["id"])) == "confirmed"
    # Nor can a free booking be left awaiting a payment by any other writer.
    with pytest.raises(asyncpg.CheckViolationError):
        await seed_booking(
            db, student=student, mentor=mentor, start=slot(4, 10), status="pending_payment", price_minor=0
        )


async def test_a_start_the_mentor_does_not_offer_is_refused(
    api: Client, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    student, mentor = await make_user("student"), await make_mentor(min_notice_minutes=24 * 60, window_days=10)
    refused = [
        request(mentor, slot(3, 21)),  # outside open hours
        request(mentor, slot(3, 10, 15)),  # not on the slot grid
        request(mentor, slot(3, 19, 30), 60),  # runs past closing time
        request(mentor, datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)),  # inside the notice
        request(mentor, slot(12, 10)),  # beyond the booking window
        request(mentor, slot(-1, 10)),  # in the past
    ]
    for body in refused:
        reply = await api.call("POST", "bookings", body, user=student)
        assert is_problem(reply, 422, "slot_unavailable"), (body, reply.body)
    wrong_length = await api.call("POST", "bookings", request(mentor, slot(3, 10), 45), user=student)
    assert is_problem(wrong_length, 422, "unsupported_session_length")
    naive = await api.call(
        "POST", "bookings", {**request(mentor, slot(3, 10)), "start": "2030-01-01T10:00:00"}, user=student
    )
    assert is_problem(naive, 422, "validation_failed")
    unknown = await api.call(
        "POST", "bookings", {**request(mentor, slot(3, 10)), "mentor_id": str(student.id)}, user=student
    )
    assert is_problem(unknown, 404, "mentor_not_found")
    mentor_books = await api.call("POST", "bookings", request(mentor, slot(3, 10)), user=await make_user("mentor"))
    assert is_problem(mentor_books, 403, "forbidden")


async def test_an_overlap_is_slot_taken_for_the_mentor_and_student_busy_for_the_student(
    api: Client, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    first, second = await make_user("student"), await make_user("student")
    mentor, other_mentor = await make_mentor(), await make_mentor()
    assert (await api.call("POST", "bookings", request(mentor, slot(4, 10), 60), user=first)).status == 201
    # Same mentor, overlapping range (10:30-11:00 inside 10:00-11:00), another student.
    taken = await api.call("POST", "bookings", request(mentor, slot(4, 10, 30), 30), user=second)
    assert is_problem(taken, 409, "slot_taken")
    # Same student, another mentor, overlapping time.
    busy = await api.call("POST", "bookings", request(other_mentor, slot(4, 10, 30), 30), user=first)
    assert is_problem(busy, 409, "student_busy")
    # Back to back is not an overlap.
    after = await api.call("POST", "bookings", request(mentor, slot(4, 11), 60), user=second)
    assert after.status == 201, after.body


async def test_a_cancelled_or_expired_booking_no_longer_holds_its_slot(
    api: Client, db: asyncpg.Connection, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    student, mentor = await make_user("student"), await make_mentor()
    for status in ("cancelled", "expired"):
        created = await api.call("POST", "bookings", request(mentor, slot(5, 9)), user=student)
        assert created.status == 201, created.body
        await db.execute(
            "UPDATE bookings SET status = $2, cancelled_at = CASE WHEN $2 = 'cancelled' THEN now() END WHERE id = $1",
            created.body["id"],
            status,
        )
    again = await api.call("POST", "bookings", request(mentor, slot(5, 9)), user=student)
    assert again.status == 201, again.body


async def test_a_hundred_students_race_for_overlapping_slots_and_exactly_one_wins(
    api: Client, db: asyncpg.Connection, make_mentor: MakeMentor
) -> None:
    mentor = await make_mentor()
    students = [await insert_user(db, "student") for _ in range(100)]
    # Every request overlaps every other: 10:00-11:00 and 10:30-11:00 share 10:30-11:00.
    bodies = [request(mentor, slot(6, 10), 60) if i % 2 else request(mentor, slot(6, 10, 30), 30) for i in range(100)]
    replies = await asyncio.gather(
        *(api.call("POST", "bookings", body, user=student) for body, student in zip(bodies, students, strict=True))
    )
    statuses = Counter(reply.status for reply in replies)
    assert statuses == {201: 1, 409: 99}, statuses
    assert all(is_problem(reply, 409, "slot_taken") for reply in replies if reply.status == 409)
    held = await db.fetchval(
        "SELECT count(*) FROM bookings WHERE mentor_id = $1 AND status IN ('pending_payment', 'confirmed')", mentor.id
    )
    assert held == 1


async def test_an_overlap_deadlock_is_retried_instead_of_failing(
    db: asyncpg.Connection,
    app_database: Database,
    app_cache: Cache,
    make_user: MakeUser,
    make_mentor: MakeMentor,
) -> None:
    """An exclusion constraint is checked after the new index entry is written, so two transactions
    can wait for each other; PostgreSQL then fails one after deadlock_timeout (the one that waited
    first: the request). The request must run again: its rivals rolled back, so the slot is free
    and the answer is 201, not the 409 slot_taken it would get had every attempt deadlocked."""
    first, second, student = await make_user("student"), await make_user("student"), await make_user("student")
    mentor = await make_mentor()
    data = BookingCreate(mentor_id=mentor.id, start=slot(7, 10, 30), length_minutes=30)  # 10:30-11:00

    async def blocked_on_a_lock() -> None:
        while not await db.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"):  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    transaction = db.transaction()
    await transaction.start()
    try:
        # An uncommitted 10:00-10:45: the request waits for this transaction...
        await seed_booking(db, student=first, mentor=mentor, start=slot(7, 10), minutes=45)
        request = asyncio.create_task(
            service.create_booking(app_database, app_cache, student.id, data, policy=POLICY, now=datetime.now(UTC))
        )
        await asyncio.wait_for(blocked_on_a_lock(), 10)
        # ...and this transaction's 10:50-11:10 waits for the request's 10:30-11:00.
        with contextlib.suppress(asyncpg.DeadlockDetectedError):  # should PostgreSQL fail this side instead
            await seed_booking(db, student=second, mentor=mentor, start=slot(7, 10, 50), minutes=20)
    finally:
        await transaction.rollback()
    outcome = await asyncio.wait_for(request, 20)
    assert outcome.status == 201 and outcome.body["student_id"] == str(student.id)


async def test_a_request_that_keeps_losing_overlap_deadlocks_gets_slot_taken() -> None:
    attempts = 0

    async def always_deadlocked() -> None:
        nonlocal attempts
        attempts += 1
        raise OverlapRace()

    with pytest.raises(SlotTaken) as taken:
        await service._retry_overlap_races(always_deadlocked)
    assert (taken.value.status, taken.value.code) == (409, "slot_taken")
    assert attempts == service.OVERLAP_RACE_ATTEMPTS > 3

    async def deadlocked_five_times() -> str:
        nonlocal attempts
        attempts += 1
        if attempts <= 5:
            raise OverlapRace()
        return "booked"

    attempts = 0
    assert await service._retry_overlap_races(deadlocked_five_times) == "booked"
