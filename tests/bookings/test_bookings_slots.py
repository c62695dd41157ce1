"""GET /api/mentors/{id}/slots hides the slots of bookings that hold them, and only those."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode

import asyncpg
from bookings_helpers import Client, MakeMentor, MakeUser, User, seed_booking, slot


async def slot_starts(api: Client, mentor: User, days: int, length: int) -> list[datetime]:
    day = slot(days, 0).date().isoformat()
    query = urlencode({"from": day, "to": day, "length": length})
    reply = await api.call("GET", f"mentors/{mentor.id}/slots?{query}")
    assert reply.status == 200, reply.body
    return [datetime.fromisoformat(s["start"]) for s in reply.body["slots"]]


async def test_slots_overlapping_a_held_booking_are_not_offered(
    api: Client, db: asyncpg.Connection, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    student, mentor = await make_user("student"), await make_mentor()
    open_day = [slot(4, 8, 0) + timedelta(minutes=30 * i) for i in range(24)]  # 08:00 ... 19:30
    assert await slot_starts(api, mentor, 4, 30) == open_day

    body = {"mentor_id": str(mentor.id), "start": slot(4, 10).isoformat(), "length_minutes": 60}
    booked = await api.call("POST", "bookings", body, user=student)
    assert booked.status == 201
    await seed_booking(db, student=student, mentor=mentor, start=slot(4, 14), status="confirmed")
    await seed_booking(db, student=student, mentor=mentor, start=slot(4, 16), status="cancelled")
    await seed_booking(db, student=student, mentor=mentor, start=slot(4, 17), status="expired")
    hidden = {slot(4, 10), slot(4, 10, 30), slot(4, 14), slot(4, 14, 30)}
    assert await slot_starts(api, mentor, 4, 30) == [s for s in open_day if s not in hidden]
    hourly = await slot_starts(api, mentor, 4, 60)
    assert slot(4, 10) not in hourly and slot(4, 14) not in hourly and slot(4, 16) in hourly

    cancel = await api.call("POST", f"bookings/{booked.body['id']}/cancel", {"reason": "freed"}, user=student)
    assert cancel.status == 200
    assert slot(4, 10) in await slot_starts(api, mentor, 4, 30)
