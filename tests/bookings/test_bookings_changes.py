"""Reschedule, cancel and status changes: the cutoff edges with a pinned `now`, refunds under the
booking's own policy snapshot, and the snapshot surviving a change of the mentor's rate."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import asyncpg
import pytest
from bookings_helpers import POLICY, RATE_MINOR, Client, MakeMentor, MakeUser, User, is_problem, seed_booking, slot

from shared.bookings import service
from shared.bookings.models import Booking, BookingCreate, RescheduleRequest, StatusUpdate
from shared.bookings.policy import Policy
from shared.bookings.repository import SlotTaken
from shared.bookings.states import InvalidTransition, SessionStarted
from shared.cache.cache import Cache
from shared.db.database import Database

TICK = timedelta(microseconds=1)
HALF_REFUND = Policy(**{**POLICY.snapshot(), "late_cancel_refund_percent": 50})


async def create(
    database: Database, cache: Cache, student: User, mentor: User, start: datetime, policy: Policy = POLICY
) -> Booking:
    data = BookingCreate(mentor_id=mentor.id, start=start, length_minutes=60)
    outcome = await service.create_booking(database, cache, student.id, data, policy=policy, now=datetime.now(UTC))
    return Booking.model_validate(outcome.body)


async def confirmed(
    database: Database, cache: Cache, student: User, mentor: User, start: datetime, **kw: Policy
) -> Booking:
    booking = await create(database, cache, student, mentor, start, **kw)
    return await service.confirm_booking(database, cache, booking.id, now=datetime.now(UTC))


# --- reschedule -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("offset", "allowed"), [(-TICK, True), (timedelta(0), True), (TICK, False)])
async def test_reschedule_up_to_and_including_start_minus_the_cutoff(
    offset: timedelta,
    allowed: bool,
    db: asyncpg.Connection,
    app_database: Database,
    app_cache: Cache,
    make_user: MakeUser,
    make_mentor: MakeMentor,
) -> None:
    student, mentor = await make_user("student"), await make_mentor()
    start = slot(5, 10)
    booking = await confirmed(app_database, app_cache, student, mentor, start)
    now = start - timedelta(hours=24) + offset
    request = RescheduleRequest(start=slot(5, 14), reason="clash at work")
    if not allowed:
        with pytest.raises(service.RescheduleCutoffPassed):
            await service.reschedule_booking(app_database, app_cache, student.principal, booking.id, request, now=now)
        return
    moved = await service.reschedule_booking(app_database, app_cache, student.principal, booking.id, request, now=now)
    assert (moved.id, moved.status, moved.price) == (booking.id, "confirmed", booking.price)
    assert (moved.start, moved.end, moved.reschedule_count) == (slot(5, 14), slot(5, 15), 1)
    link = await db.fetchrow("SELECT * FROM booking_reschedules WHERE booking_id = $1", booking.id)
    assert (link["old_start"], link["old_end"], link["new_start"], link["new_end"]) == (
        start,
        start + timedelta(hours=1),
        slot(5, 14),
        slot(5, 15),
    )
    assert (link["rescheduled_by"], link["reason"]) == (student.id, "clash at work")


async def test_reschedule_rechecks_the_new_slot_and_may_overlap_only_itself(
    db: asyncpg.Connection, app_database: Database, app_cache: Cache, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    student, rival, mentor = await make_user("student"), await make_user("student"), await make_mentor()
    now = datetime.now(UTC)
    booking = await create(app_database, app_cache, student, mentor, slot(6, 10))
    await create(app_database, app_cache, rival, mentor, slot(6, 12))
    with pytest.raises(SlotTaken):  # onto another student's booking
        await service.reschedule_booking(
            app_database, app_cache, student.principal, booking.id, RescheduleRequest(start=slot(6, 12)), now=now
        )
    with pytest.raises(service.SlotUnavailable):  # outside the mentor's hours
        await service.reschedule_booking(
            app_database, app_cache, student.principal, booking.id, RescheduleRequest(start=slot(6, 21)), now=now
        )
    # The mentor's hours now start at 08:30, so 60-minute slots start on the half hour, and 10:30
    # overlaps the booking's own 10:00-11:00: allowed, the constraints compare other rows only.
    await db.execute("UPDATE mentor_weekly_hours SET start_time = '08:30' WHERE mentor_id = $1", mentor.id)
    moved = await service.reschedule_booking(
        app_database, app_cache, mentor.principal, booking.id, RescheduleRequest(start=slot(6, 10, 30)), now=now
    )
    assert (moved.start, moved.length_minutes, moved.reschedule_count) == (slot(6, 10, 30), 60, 1)
    cancelled = await service.cancel_booking(app_database, app_cache, student.principal, booking.id, "x", now=now)
    with pytest.raises(service.NotReschedulable):
        await service.reschedule_booking(
            app_database, app_cache, student.principal, cancelled.id, RescheduleRequest(start=slot(6, 15)), now=now
        )


async def test_a_reschedule_racing_a_create_onto_the_same_slot_lets_exactly_one_win(
    api: Client, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    mentor = await make_mentor()
    for hour in range(8, 20, 2):  # six rounds, each onto a fresh slot
        mover, rival = await make_user("student"), await make_user("student")
        original = {"mentor_id": str(mentor.id), "start": slot(9, hour).isoformat(), "length_minutes": 60}
        created = await api.call("POST", "bookings", original, user=mover)
        assert created.status == 201, created.body
        target = slot(9, hour + 1).isoformat()
        moved, booked = await asyncio.gather(
            api.call("POST", f"bookings/{created.body['id']}/reschedule", {"start": target}, user=mover),
            api.call("POST", "bookings", {**original, "start": target}, user=rival),
        )
        assert sorted((moved.status, booked.status)) in ([200, 409], [201, 409]), (moved.body, booked.body)
        loser = moved if moved.status == 409 else booked
        assert is_problem(loser, 409, "slot_taken"), loser.body
        holders = await api.call(
            "GET", f"bookings?from={quote(target)}&to={quote(slot(9, hour + 2).isoformat())}", user=mentor
        )
        assert len(holders.body["data"]) == 1, holders.body


async def test_reschedule_over_http_keeps_the_id_and_a_stranger_gets_404(
    api: Client, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    student, stranger, mentor = await make_user("student"), await make_user("student"), await make_mentor()
    body = {"mentor_id": str(mentor.id), "start": slot(7, 10).isoformat(), "length_minutes": 60}
    created = await api.call("POST", "bookings", body, user=student)
    path = f"bookings/{created.body['id']}/reschedule"
    refused = await api.call("POST", path, {"start": slot(7, 12).isoformat()}, user=stranger)
    assert is_problem(refused, 404, "booking_not_found")
    moved = await api.call("POST", path, {"start": slot(7, 12).isoformat(), "reason": "later"}, user=student)
    assert moved.status == 200, moved.body
    assert moved.body["id"] == created.body["id"] and datetime.fromisoformat(moved.body["start"]) == slot(7, 12)
    late = await api.call("POST", path, {"start": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}, user=student)
    assert is_problem(late, 422, "slot_unavailable")


# --- cancel and refunds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (-TICK, RATE_MINOR),
        (timedelta(0), RATE_MINOR),
        (TICK, RATE_MINOR // 2),
        (timedelta(hours=24) - TICK, RATE_MINOR // 2),  # the last instant before the start
    ],
)
async def test_a_student_cancellation_is_refunded_in_full_up_to_the_cutoff_then_the_late_percent(
    offset: timedelta,
    expected: int,
    app_database: Database,
    app_cache: Cache,
    make_user: MakeUser,
    make_mentor: MakeMentor,
) -> None:
    student, mentor = await make_user("student"), await make_mentor()
    start = slot(5, 9)
    booking = await confirmed(app_database, app_cache, student, mentor, start, policy=HALF_REFUND)
    now = start - timedelta(hours=24) + offset
    cancelled = await service.cancel_booking(app_database, app_cache, student.principal, booking.id, "ill", now=now)
    assert cancelled.status == "cancelled" and cancelled.refund_due_minor == expected
    assert cancelled.cancellation is not None
    assert (cancelled.cancellation.by, cancelled.cancellation.role) == (student.id, "student")
    assert (cancelled.cancellation.reason, cancelled.cancellation.at) == ("ill", now)


async def test_a_student_cancelling_after_the_mentor_moved_the_booking_is_refunded_in_full(
    app_database: Database, app_cache: Cache, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    """The default policy refunds nothing within 24 h of the start; a mentor must not be able to move
    a session into that window and keep the money."""
    student, mentor = await make_user("student"), await make_mentor()
    moved_by_mentor = await confirmed(app_database, app_cache, student, mentor, slot(5, 10))
    moved_by_student = await confirmed(app_database, app_cache, student, mentor, slot(5, 12))
    early = slot(4, 8)  # a day and more before either start
    for booking, by, to in ((moved_by_mentor, mentor, slot(5, 14)), (moved_by_student, student, slot(5, 16))):
        request = RescheduleRequest(start=to)
        await service.reschedule_booking(app_database, app_cache, by.principal, booking.id, request, now=early)

    def late(start: datetime) -> datetime:
        return start - timedelta(hours=3)

    cancelled = await service.cancel_booking(
        app_database, app_cache, student.principal, moved_by_mentor.id, "cannot make it", now=late(slot(5, 14))
    )
    assert cancelled.refund_due_minor == RATE_MINOR
    own = await service.cancel_booking(
        app_database, app_cache, student.principal, moved_by_student.id, "cannot make it", now=late(slot(5, 16))
    )
    assert own.refund_due_minor == 0  # the student chose the new time: the usual late rule


async def test_a_time_the_student_chose_after_the_mentor_moved_it_is_theirs(
    app_database: Database, app_cache: Cache, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    student, mentor = await make_user("student"), await make_mentor()
    booking = await confirmed(app_database, app_cache, student, mentor, slot(5, 10))
    early = slot(4, 8)
    for by, to in ((mentor, slot(5, 14)), (student, slot(5, 16))):
        await service.reschedule_booking(
            app_database, app_cache, by.principal, booking.id, RescheduleRequest(start=to), now=early
        )
    cancelled = await service.cancel_booking(
        app_database, app_cache, student.principal, booking.id, "x", now=slot(5, 16) - timedelta(hours=3)
    )
    assert cancelled.refund_due_minor == 0


@pytest.mark.parametrize("after_start", [timedelta(0), timedelta(hours=1)])
async def test_once_the_session_started_only_an_admin_may_cancel(
    after_start: timedelta,
    app_database: Database,
    app_cache: Cache,
    make_user: MakeUser,
    make_mentor: MakeMentor,
) -> None:
    student, mentor, admin = await make_user("student"), await make_mentor(), await make_user("admin")
    start = slot(5, 9)
    booking = await confirmed(app_database, app_cache, student, mentor, start, policy=HALF_REFUND)
    now = start + after_start
    for participant in (student, mentor):
        with pytest.raises(SessionStarted) as refused:
            await service.cancel_booking(app_database, app_cache, participant.principal, booking.id, "x", now=now)
        assert (refused.value.status, refused.value.code) == (409, "session_started")
    cancelled = await service.cancel_booking(app_database, app_cache, admin.principal, booking.id, "ops", now=now)
    assert cancelled.status == "cancelled" and cancelled.refund_due_minor == RATE_MINOR


async def test_a_student_cannot_cancel_a_session_that_started_yesterday(
    api: Client, db: asyncpg.Connection, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    student, mentor = await make_user("student"), await make_mentor()
    started = await seed_booking(db, student=student, mentor=mentor, start=datetime.now(UTC) - timedelta(days=1))
    reply = await api.call("POST", f"bookings/{started}/cancel", {"reason": "forgot"}, user=student)
    assert is_problem(reply, 409, "session_started"), reply.body
    by_status = {"status": "cancelled", "reason": "forgot"}
    assert is_problem(
        await api.call("PATCH", f"bookings/{started}/status", by_status, user=mentor), 409, "session_started"
    )
    assert await db.fetchval("SELECT status FROM bookings WHERE id = $1", started) == "confirmed"


async def test_refunds_for_each_kind_of_cancellation_and_no_show(
    api: Client, db: asyncpg.Connection, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    admin, mentor = await make_user("admin"), await make_mentor()
    # The default policy: a student cancelling within 24 h of the start gets 0 %.
    past, future = slot(-1, 10), datetime.now(UTC).replace(microsecond=0) + timedelta(hours=30)

    async def booking(start: datetime, status: str = "confirmed") -> tuple[User, str]:
        student = await make_user("student")
        return student, str(await seed_booking(db, student=student, mentor=mentor, start=start, status=status))

    async def cancel(user: User, booking_id: str) -> int:
        reply = await api.call("POST", f"bookings/{booking_id}/cancel", {"reason": "because"}, user=user)
        assert reply.status == 200, reply.body
        assert reply.body["cancellation"]["role"] == user.role
        refund: int = reply.body["refund_due_minor"]
        return refund

    student, unpaid = await booking(future, "pending_payment")
    assert await cancel(student, unpaid) == 0  # nothing was paid
    _, by_mentor = await booking(future + timedelta(hours=1))
    assert await cancel(mentor, by_mentor) == RATE_MINOR
    _, by_admin = await booking(future + timedelta(hours=2))
    assert await cancel(admin, by_admin) == RATE_MINOR
    student, late = await booking(future - timedelta(hours=10))
    assert await cancel(student, late) == 0  # within 24 h of the start

    _, absent_student = await booking(past)
    marked = await api.call("PATCH", f"bookings/{absent_student}/status", {"status": "no_show"}, user=mentor)
    assert marked.status == 200, marked.body
    assert (marked.body["no_show_party"], marked.body["refund_due_minor"]) == ("student", 0)
    _, absent_mentor = await booking(past + timedelta(hours=1))
    body = {"status": "no_show", "no_show_party": "mentor"}
    marked = await api.call("PATCH", f"bookings/{absent_mentor}/status", body, user=admin)
    assert (marked.body["no_show_party"], marked.body["refund_due_minor"]) == ("mentor", RATE_MINOR)


async def test_a_terminal_booking_cannot_be_cancelled(
    api: Client, db: asyncpg.Connection, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    student, mentor = await make_user("student"), await make_mentor()
    done = await seed_booking(db, student=student, mentor=mentor, start=slot(-2, 10), status="completed")
    reply = await api.call("POST", f"bookings/{done}/cancel", {"reason": "too late"}, user=student)
    assert is_problem(reply, 409, "invalid_transition")
    assert (reply.body["from"], reply.body["to"]) == ("completed", "cancelled")
    blank = await api.call("POST", f"bookings/{done}/cancel", {"reason": "  "}, user=student)
    assert is_problem(blank, 422, "validation_failed")


# --- status by the mentor -------------------------------------------------------------------------


async def test_the_mentor_marks_completed_or_no_show_only_after_the_start(
    api: Client, db: asyncpg.Connection, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    student, mentor, other_mentor = await make_user("student"), await make_mentor(), await make_mentor()
    upcoming = await seed_booking(db, student=student, mentor=mentor, start=slot(2, 10))
    started = await seed_booking(db, student=student, mentor=mentor, start=slot(-1, 10))
    early = await api.call("PATCH", f"bookings/{upcoming}/status", {"status": "completed"}, user=mentor)
    assert is_problem(early, 409, "session_not_started")
    early_no_show = await api.call("PATCH", f"bookings/{upcoming}/status", {"status": "no_show"}, user=mentor)
    assert is_problem(early_no_show, 409, "session_not_started")
    own = {"status": "no_show", "no_show_party": "mentor"}
    assert is_problem(
        await api.call("PATCH", f"bookings/{started}/status", own, user=mentor), 403, "transition_not_allowed"
    )
    confirm = await api.call("PATCH", f"bookings/{started}/status", {"status": "confirmed"}, user=mentor)
    assert is_problem(confirm, 409, "invalid_transition")
    stranger = await api.call("PATCH", f"bookings/{started}/status", {"status": "completed"}, user=other_mentor)
    assert is_problem(stranger, 404, "booking_not_found")
    done = await api.call("PATCH", f"bookings/{started}/status", {"status": "completed"}, user=mentor)
    assert done.status == 200 and done.body["status"] == "completed" and done.body["refund_due_minor"] is None
    admin = await make_user("admin")
    missing_party = await api.call("PATCH", f"bookings/{upcoming}/status", {"status": "no_show"}, user=admin)
    assert is_problem(missing_party, 422, "no_show_party_required")
    mismatched = {"status": "completed", "no_show_party": "student"}
    assert is_problem(
        await api.call("PATCH", f"bookings/{upcoming}/status", mismatched, user=admin), 422, "validation_failed"
    )


# --- the snapshot ---------------------------------------------------------------------------------


async def test_a_rate_change_never_alters_an_existing_booking(
    api: Client, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    student, mentor = await make_user("student"), await make_mentor()
    body = {"mentor_id": str(mentor.id), "start": slot(8, 10).isoformat(), "length_minutes": 30}
    created = await api.call("POST", "bookings", body, user=student)
    assert created.body["price"] == {"amount_minor": RATE_MINOR // 2, "currency": "INR"}
    rate = await api.call("PUT", "mentors/me/hourly-rate", {"amount_minor": 400_000, "currency": "USD"}, user=mentor)
    assert rate.status == 200, rate.body
    again = await api.call("GET", f"bookings/{created.body['id']}", user=student)
    assert again.body["price"] == {"amount_minor": RATE_MINOR // 2, "currency": "INR"}
    assert again.body["policy"] == created.body["policy"] == POLICY.snapshot()
    assert again.body["commission_bps"] == created.body["commission_bps"]
    later = await api.call("POST", "bookings", {**body, "start": slot(8, 12).isoformat()}, user=student)
    assert later.body["price"] == {"amount_minor": 200_000, "currency": "USD"}


async def test_a_cancel_through_the_status_route_needs_a_reason_and_records_it(
    api: Client, db: asyncpg.Connection, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    student, mentor, admin = await make_user("student"), await make_mentor(), await make_user("admin")
    booking = await seed_booking(db, student=student, mentor=mentor, start=slot(4, 10))
    path = f"bookings/{booking}/status"
    for user in (mentor, admin):
        for reasonless in ({"status": "cancelled"}, {"status": "cancelled", "reason": "   "}):
            assert is_problem(await api.call("PATCH", path, reasonless, user=user), 422, "validation_failed")
    assert await db.fetchval("SELECT status FROM bookings WHERE id = $1", booking) == "confirmed"
    done = await api.call("PATCH", path, {"status": "cancelled", "reason": "double booked"}, user=admin)
    assert done.status == 200, done.body
    assert (done.body["cancellation"]["reason"], done.body["cancellation"]["role"]) == ("double booked", "admin")


async def test_a_cancel_through_the_status_route_is_final_for_the_payment_flow(
    app_database: Database, app_cache: Cache, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    student, mentor = await make_user("student"), await make_mentor()
    booking = await create(app_database, app_cache, student, mentor, slot(3, 10))
    now = datetime.now(UTC)
    await service.update_status(
        app_database,
        app_cache,
        mentor.principal,
        booking.id,
        StatusUpdate(status="cancelled", reason="mentor ill"),
        now=now,
    )
    with pytest.raises(InvalidTransition):
        await service.confirm_booking(app_database, app_cache, booking.id, now=now)
