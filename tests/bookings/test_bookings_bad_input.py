"""Bad input on the bookings routes is 422 problem+json over HTTP and stores nothing: instants that
overflow date arithmetic or cannot be encoded, forged cursors, and NUL characters in free text."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import asyncpg
import pytest
from bookings_helpers import Client, MakeMentor, MakeUser, Reply, User, is_problem, slot
from forged_cursor import with_instant

OUT_OF_RANGE = [
    "9999-12-30T10:00:00+00:00",  # adding the length or the +-2 days around it overflows
    "9999-12-31T23:30:00+00:00",
    "0001-01-01T00:30:00+01:00",  # converting to UTC overflows
    "0001-01-01T00:00:00+05:00",
    "0001-01-01T00:00:00+01:00",  # asyncpg cannot encode it
    "1999-12-31T23:59:59+00:00",
    "2200-01-01T00:00:00+00:00",
]


def refused(reply: Reply, code: str = "validation_failed") -> bool:
    return is_problem(reply, 422, code) and "traceId" not in reply.body


async def rows(db: asyncpg.Connection, student: User) -> list[dict[str, Any]]:
    found = await db.fetch("SELECT * FROM bookings WHERE student_id = $1 ORDER BY id", student.id)
    return [dict(row) for row in found]


@pytest.mark.parametrize("start", OUT_OF_RANGE)
async def test_a_booking_at_an_unusable_instant_is_422(
    api: Client, db: asyncpg.Connection, make_user: MakeUser, make_mentor: MakeMentor, start: str
) -> None:
    student, mentor = await make_user("student"), await make_mentor()
    body = {"mentor_id": str(mentor.id), "start": start, "length_minutes": 60}
    reply = await api.call("POST", "bookings", body, user=student, headers={"Idempotency-Key": "far-future"})
    assert refused(reply), reply.body
    assert reply.body["errors"][0]["loc"] == ["start"]
    assert await rows(db, student) == []
    assert await db.fetchval("SELECT count(*) FROM idempotency_keys WHERE user_id = $1", student.id) == 0


async def test_a_naive_start_is_422(api: Client, make_user: MakeUser, make_mentor: MakeMentor) -> None:
    student, mentor = await make_user("student"), await make_mentor()
    body = {"mentor_id": str(mentor.id), "start": "2030-01-01T10:00:00", "length_minutes": 60}
    assert refused(await api.call("POST", "bookings", body, user=student))


@pytest.mark.parametrize("start", OUT_OF_RANGE)
async def test_rescheduling_to_an_unusable_instant_is_422_and_changes_nothing(
    api: Client, db: asyncpg.Connection, make_user: MakeUser, make_mentor: MakeMentor, start: str
) -> None:
    student, mentor = await make_user("student"), await make_mentor()
    body = {"mentor_id": str(mentor.id), "start": slot(5, 10).isoformat(), "length_minutes": 60}
    created = await api.call("POST", "bookings", body, user=student)
    assert created.status == 201, created.body
    before = await rows(db, student)
    reply = await api.call("POST", f"bookings/{created.body['id']}/reschedule", {"start": start}, user=student)
    assert refused(reply), reply.body
    assert await rows(db, student) == before
    assert await db.fetchval("SELECT count(*) FROM booking_reschedules WHERE booking_id = $1", before[0]["id"]) == 0


@pytest.mark.parametrize("param", ["from", "to"])
@pytest.mark.parametrize("instant", OUT_OF_RANGE)
async def test_listing_with_an_unusable_time_filter_is_422(
    api: Client, make_user: MakeUser, param: str, instant: str
) -> None:
    student = await make_user("student")
    assert refused(await api.call("GET", "bookings?" + urlencode({param: instant}), user=student))


@pytest.mark.parametrize("instant", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "2200-06-01T00:00:00Z"])
async def test_a_cursor_carrying_an_unusable_instant_is_422(
    api: Client, make_user: MakeUser, make_mentor: MakeMentor, instant: str
) -> None:
    student = await make_user("student")
    for days in (3, 4):
        booked = await api.call(
            "POST",
            "bookings",
            {"mentor_id": str((await make_mentor()).id), "start": slot(days, 10).isoformat(), "length_minutes": 60},
            user=student,
        )
        assert booked.status == 201, booked.body
    first = await api.call("GET", "bookings?limit=1", user=student)
    assert first.status == 200 and first.body["next_cursor"], first.body
    forged = with_instant(first.body["next_cursor"], instant)
    reply = await api.call("GET", "bookings?" + urlencode({"limit": 1, "cursor": forged}), user=student)
    assert refused(reply, "invalid_cursor"), reply.body


async def test_nul_in_the_notes_is_422_and_stores_nothing(
    api: Client, db: asyncpg.Connection, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    student, mentor = await make_user("student"), await make_mentor()
    body = {"mentor_id": str(mentor.id), "start": slot(5, 10).isoformat(), "length_minutes": 60, "notes": "a\u0000b"}
    reply = await api.call("POST", "bookings", body, user=student, headers={"Idempotency-Key": "nul-notes"})
    assert refused(reply), reply.body
    assert reply.body["errors"][0]["loc"] == ["notes"]
    assert await rows(db, student) == []


async def test_nul_in_a_cancel_reason_is_422_and_changes_nothing(
    api: Client, db: asyncpg.Connection, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    student, mentor = await make_user("student"), await make_mentor()
    body = {"mentor_id": str(mentor.id), "start": slot(5, 10).isoformat(), "length_minutes": 60}
    booking_id = (await api.call("POST", "bookings", body, user=student)).body["id"]
    before = await rows(db, student)
    reply = await api.call("POST", f"bookings/{booking_id}/cancel", {"reason": "ill\u0000"}, user=student)
    assert refused(reply), reply.body
    as_status = {"status": "cancelled", "reason": "\u0000"}
    assert refused(await api.call("PATCH", f"bookings/{booking_id}/status", as_status, user=mentor))
    moved = {"start": slot(5, 12).isoformat(), "reason": "clash\u0000"}
    assert refused(await api.call("POST", f"bookings/{booking_id}/reschedule", moved, user=student))
    assert await rows(db, student) == before
