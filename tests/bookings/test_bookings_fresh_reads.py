"""Both participants' cached lists and stats read back fresh right after every kind of booking change
that does not go through a route (create does too): confirm_booking and expire_booking (the payment
flow), a reschedule, and the housekeeping sweep. Each view is read twice, so the second read comes
from the cache, and compared with what the database says now."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import asyncpg
from bookings_helpers import POLICY, Client, MakeMentor, MakeUser, User, slot

from shared.bookings import service
from shared.bookings.models import Booking, BookingCreate, RescheduleRequest
from shared.cache.cache import Cache
from shared.db.database import Database
from shared.stats import repository as stats_repository


async def read_twice(api: Client, path: str, user: User) -> Any:
    first = await api.call("GET", path, user=user)
    second = await api.call("GET", path, user=user)
    assert first.status == second.status == 200, second.body
    return second.body


def without_as_of(stats: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in stats.items() if name != "as_of"}


async def test_lists_and_stats_of_both_participants_are_fresh_after_every_change(
    api: Client,
    db: asyncpg.Connection,
    app_database: Database,
    app_cache: Cache,
    make_user: MakeUser,
    make_mentor: MakeMentor,
) -> None:
    student, mentor = await make_user("student"), await make_mentor()

    async def check(step: str) -> None:
        rows = await db.fetch(
            "SELECT id, status, scheduled_at FROM bookings WHERE student_id = $1 ORDER BY scheduled_at DESC, id DESC",
            student.id,
        )
        truth = [(str(r["id"]), r["status"], r["scheduled_at"]) for r in rows]
        for user in (student, mentor):
            page = await read_twice(api, "bookings", user)
            listed = [(b["id"], b["status"], datetime.fromisoformat(b["start"])) for b in page["data"]]
            assert listed == truth, (step, user.role)
        now = datetime.now(UTC)
        async with app_database.connection() as conn:
            student_figures = await stats_repository.student_stats(conn, student.id, now)
            mentor_figures = await stats_repository.mentor_stats(conn, mentor.id, now)
        assert mentor_figures is not None
        student_truth = student_figures.stats.model_dump(mode="json")
        mentor_truth = mentor_figures.stats.model_dump(mode="json")
        student_view = await read_twice(api, "students/me/stats", student)
        mentor_view = await read_twice(api, "mentors/me/stats", mentor)
        assert without_as_of(student_view) == without_as_of(student_truth), step
        assert without_as_of(mentor_view) == without_as_of(mentor_truth), step

    async def create(start: datetime) -> Booking:
        data = BookingCreate(mentor_id=mentor.id, start=start, length_minutes=60)
        outcome = await service.create_booking(
            app_database, app_cache, student.id, data, policy=POLICY, now=datetime.now(UTC)
        )
        return Booking.model_validate(outcome.body)

    await check("nothing yet")
    paid = await create(slot(9, 10))
    await check("create")
    await service.confirm_booking(app_database, app_cache, paid.id, now=datetime.now(UTC))
    await check("confirm_booking")
    request = RescheduleRequest(start=slot(9, 15))
    await service.reschedule_booking(app_database, app_cache, mentor.principal, paid.id, request, now=datetime.now(UTC))
    await check("reschedule")
    unpaid = await create(slot(10, 10))
    await check("second create")
    await service.expire_booking(app_database, app_cache, unpaid.id, now=datetime.now(UTC))
    await check("expire_booking")
    stale = await create(slot(11, 10))
    await check("third create")
    # Its hold ran out (written behind the cache's back, which changes no view), then the sweep runs.
    await db.execute("UPDATE bookings SET hold_expires_at = now() - interval '1 second' WHERE id = $1", stale.id)
    assert await service.expire_stale_holds(app_database, app_cache, now=datetime.now(UTC)) >= 1
    assert await db.fetchval("SELECT status FROM bookings WHERE id = $1", stale.id) == "expired"
    await check("sweeper")
    spend = json.dumps((await read_twice(api, "students/me/stats", student))["spend"])
    assert spend == json.dumps([{"currency": "INR", "amount_minor": paid.price.amount_minor}])
