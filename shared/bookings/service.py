"""Booking use cases: create (with Idempotency-Key), read, reschedule, cancel, status changes, and
the transitions the payment orchestration and housekeeping make.

Overlap is decided by the database: the exclusion constraints of 0004_bookings.sql refuse a second
booking that holds an overlapping slot of the same mentor or student, whatever the race, and the
losing request gets 409 slot_taken / student_busy. Every change runs in one transaction that locks
the booking row first, and after it commits the participants' cached lists are bumped before the
call returns, so the next read is never stale. No booking change alters what mentor discovery
shows (its entries carry profiles, prices and ratings; slots are read live), so none bumps it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from shared import idempotency
from shared.auth.principal import Principal
from shared.bookings import repository
from shared.bookings.caching import BOOKINGS_TTL_S, invalidate_participants, mentor_namespace, student_namespace
from shared.bookings.models import Booking, BookingCreate, BookingQuery, BookingsPage, RescheduleRequest, StatusUpdate
from shared.bookings.policy import CancelledBy, NoShowParty, Policy, session_price_minor
from shared.bookings.repository import CancellationRecord, NewBooking, OverlapRace, SlotTaken
from shared.bookings.states import (
    HOLDS_SLOT,
    Status,
    TransitionNotAllowed,
    check_cancellation_time,
    check_transition,
)
from shared.cache.cache import Cache
from shared.db.database import Connection, Database
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.http.cursor import Keyset
from shared.mentors import repository as mentors_repository
from shared.mentors.availability import generate_slots
from shared.mentors.service import MentorNotFound, check_session_length, schedule_of
from shared.models import BoundedDatetime

CREATE_OPERATION = "create_booking"
EXPIRE_BATCH = 500
OVERLAP_RACE_ATTEMPTS = 6
# Before attempt n, a random pause of up to n times this, so two deadlocked writers do not meet again.
OVERLAP_RACE_JITTER_S = 0.02

T = TypeVar("T")
_JITTER = random.Random()  # a pause length, not a secret


class BookingNotFound(NotFound):
    code = "booking_not_found"
    title = "No such booking"


class SlotUnavailable(ValidationFailed):
    code = "slot_unavailable"
    title = "The start is not one of the mentor's bookable slots for this length"


class NotReschedulable(Conflict):
    code = "not_reschedulable"
    title = "Only bookings awaiting payment or confirmed can be rescheduled"


class RescheduleCutoffPassed(Conflict):
    code = "reschedule_cutoff_passed"
    title = "It is too close to the session to reschedule it"


class SessionNotStarted(Conflict):
    code = "session_not_started"
    title = "The session has not started yet"


class NoShowPartyRequired(ValidationFailed):
    code = "no_show_party_required"
    title = "Say who did not show: no_show_party student or mentor"


# --- helpers --------------------------------------------------------------------------------------


def _participant_role(principal: Principal, booking: Booking) -> CancelledBy | None:
    """The caller's part in the booking: its student, its mentor, an admin, or None (a stranger)."""
    if principal.user_id == booking.student_id:
        return "student"
    if principal.user_id == booking.mentor_id:
        return "mentor"
    if principal.role == "admin":
        return "admin"
    return None


async def _load_for_change(
    conn: Connection, principal: Principal, booking_id: uuid.UUID
) -> tuple[Booking, CancelledBy]:
    """The booking, locked for this transaction, and the caller's part in it.

    A stranger gets the same 404 as for a booking that does not exist, so ids leak nothing.
    """
    booking = await repository.fetch_booking(conn, booking_id, for_update=True)
    role = None if booking is None else _participant_role(principal, booking)
    if booking is None or role is None:
        raise BookingNotFound()
    return booking, role


async def _require_bookable(
    conn: Connection, mentor_id: uuid.UUID, start: datetime, length_minutes: int, now: datetime
) -> tuple[int, str]:
    """Check that `start` is a slot the mentor offers for this length at `now` (hours, notice and
    window; not other bookings, which the exclusion constraints decide). Returns (hourly rate, currency).
    """
    mentor = await mentors_repository.fetch_mentor(conn, mentor_id, listed_only=True)
    day = start.date()
    rows = await mentors_repository.fetch_availability(
        conn, mentor_id, day - timedelta(days=2), day + timedelta(days=2), include_unlisted=False
    )
    if mentor is None or rows is None:
        raise MentorNotFound()
    check_session_length(rows, length_minutes)
    length, just_after = timedelta(minutes=length_minutes), start + timedelta(microseconds=1)
    slots = generate_slots(schedule_of(rows), length=length, start=start, end=just_after, now=now)
    if [slot_start for slot_start, _ in slots] != [start]:
        raise SlotUnavailable()
    return mentor.hourly_rate.amount_minor, mentor.hourly_rate.currency


async def _retry_overlap_races(transaction: Callable[[], Awaitable[T]]) -> T:
    """Run `transaction` again, after a short random pause, when it lost an overlap deadlock (see
    repository.OverlapRace). When every attempt lost one, answer 409 slot_taken: only writers of
    overlapping ranges deadlock on the exclusion constraints, so a conflicting booking was there."""
    for attempt in range(1, OVERLAP_RACE_ATTEMPTS + 1):
        try:
            return await transaction()
        except OverlapRace:
            if attempt < OVERLAP_RACE_ATTEMPTS:
                await asyncio.sleep(_JITTER.uniform(0, OVERLAP_RACE_JITTER_S * attempt))
    raise SlotTaken()


async def _invalidate(cache: Cache, booking: Booking) -> None:
    await invalidate_participants(cache, student_id=booking.student_id, mentor_id=booking.mentor_id)


# --- create ---------------------------------------------------------------------------------------


async def create_booking(
    database: Database,
    cache: Cache,
    student_id: uuid.UUID,
    data: BookingCreate,
    *,
    policy: Policy,
    now: datetime,
    idempotency_key: idempotency.IdempotencyKey | None = None,
) -> idempotency.Outcome:
    """createBooking: a pending_payment booking holding the slot for `policy.hold_minutes`, or, when
    the price is 0, a booking confirmed at once with no hold (there is nothing to pay, so nothing
    may wait for a payment: the sweeper and the payment flow only act on pending_payment bookings).

    The price is the mentor's hourly rate for the length (rounded half up to the minor unit) and is
    snapshotted with the policy. With an Idempotency-Key, a retry replays the first success.
    """
    start = data.start.astimezone(UTC)
    end = start + timedelta(minutes=data.length_minutes)

    async def transaction() -> idempotency.Outcome:
        async with database.transaction() as conn:

            async def perform() -> idempotency.Result:
                rate, currency = await _require_bookable(conn, data.mentor_id, start, data.length_minutes, now)
                booking = await repository.insert_booking(
                    conn,
                    NewBooking(
                        student_id=student_id,
                        mentor_id=data.mentor_id,
                        start=start,
                        end=end,
                        price_minor=session_price_minor(rate, data.length_minutes),
                        currency=currency,
                        policy=policy,
                        notes=data.notes,
                        now=now,
                    ),
                )
                return 201, booking.model_dump(mode="json")

            return await idempotency.run_once(conn, idempotency_key, perform)

    outcome = await _retry_overlap_races(transaction)
    # Also on a replay: the first request may have died between its commit and its bump, and a
    # bump that changes nothing costs one cache miss.
    await invalidate_participants(cache, student_id=student_id, mentor_id=data.mentor_id)
    return outcome


# --- reads ----------------------------------------------------------------------------------------


async def get_booking(database: Database, principal: Principal, booking_id: uuid.UUID) -> Booking:
    """getBooking: for its student, its mentor and admins; 404 for anyone else."""
    async with database.connection() as conn:
        booking = await repository.fetch_booking(conn, booking_id)
    if booking is None or _participant_role(principal, booking) is None:
        raise BookingNotFound()
    return booking


# List pages, newest start first: the (start, id) of a page's last booking.
LIST_CURSOR: Keyset[tuple[datetime, uuid.UUID]] = Keyset(tuple[BoundedDatetime, uuid.UUID])


def _list_variant(role: str, query: BookingQuery) -> str:
    canonical = json.dumps([role, query.model_dump(mode="json", exclude={"role"})], sort_keys=True)
    return "list:" + hashlib.blake2b(canonical.encode(), digest_size=12).hexdigest()


async def list_bookings(database: Database, cache: Cache, principal: Principal, query: BookingQuery) -> bytes:
    """GET /api/bookings: the caller's bookings as student or mentor, newest start first, one keyset
    page, as JSON bytes cached in the caller's namespace (2 min, bumped by every change)."""
    role = query.role or ("mentor" if principal.role == "mentor" else "student")
    after = LIST_CURSOR.decode(query.cursor) if query.cursor is not None else None
    user_id = principal.user_id

    async def load() -> bytes:
        async with database.connection() as conn:
            rows = await repository.list_bookings(conn, user_id, role, query, after)
        page, more = list(rows[: query.limit]), len(rows) > query.limit
        next_cursor = LIST_CURSOR.encode((page[-1].start, page[-1].id)) if more else None
        return BookingsPage(data=page, next_cursor=next_cursor).model_dump_json().encode()

    namespace = student_namespace(user_id) if role == "student" else mentor_namespace(user_id)
    return await cache.get_or_load_versioned(namespace, _list_variant(role, query), BOOKINGS_TTL_S, load)


# --- changes by participants ----------------------------------------------------------------------


async def reschedule_booking(
    database: Database,
    cache: Cache,
    principal: Principal,
    booking_id: uuid.UUID,
    data: RescheduleRequest,
    *,
    now: datetime,
) -> Booking:
    """rescheduleBooking: move a pending or confirmed booking to another offered slot of the same
    length while now <= start - the snapshot's reschedule cutoff (the edge instant itself is allowed).

    The booking keeps its id, price and payment; the row is updated in place, so the exclusion
    constraints check the new times against every other booking atomically (its own old times do
    not count), and a booking_reschedules row links the old times to the new.
    """
    start = data.start.astimezone(UTC)

    async def transaction() -> Booking:
        async with database.transaction() as conn:
            booking, _ = await _load_for_change(conn, principal, booking_id)
            if booking.status not in HOLDS_SLOT:
                raise NotReschedulable(extra={"status": booking.status})
            if not booking.policy.may_reschedule(booking.start, now):
                deadline = booking.start - timedelta(hours=booking.policy.reschedule_cutoff_hours)
                raise RescheduleCutoffPassed(extra={"deadline": deadline.isoformat()})
            await _require_bookable(conn, booking.mentor_id, start, booking.length_minutes, now)
            return await repository.move_booking(
                conn,
                booking,
                start=start,
                end=start + timedelta(minutes=booking.length_minutes),
                by=principal.user_id,
                reason=data.reason,
                now=now,
            )

    moved = await _retry_overlap_races(transaction)
    await _invalidate(cache, moved)
    return moved


async def cancel_booking(
    database: Database,
    cache: Cache,
    principal: Principal,
    booking_id: uuid.UUID,
    reason: str | None,
    *,
    now: datetime,
) -> Booking:
    """cancelBooking by its student, its mentor or an admin: records who, in which role, why and
    when, and the refund due under the booking's own policy snapshot (the payment flow pays it).

    From the start on, the student and the mentor may no longer cancel (409 session_started): the
    mentor marks the session completed or no_show, and only an admin can still cancel it. A
    student cancelling a booking whose latest reschedule somebody else made gets a full refund.
    """
    async with database.transaction() as conn:
        booking, role = await _load_for_change(conn, principal, booking_id)
        check_transition(booking.status, "cancelled", role)
        check_cancellation_time(role, booking.start, now)
        moved_by = await repository.fetch_last_rescheduled_by(conn, booking.id)
        refund = booking.policy.cancellation_refund(
            booking.price.amount_minor,
            paid=booking.status == "confirmed",
            cancelled_by=role,
            start=booking.start,
            now=now,
            time_set_by_other_party=moved_by is not None and moved_by != booking.student_id,
        )
        cancelled = await repository.set_cancelled(
            conn, booking.id, CancellationRecord(principal.user_id, role, reason, now, refund)
        )
    await _invalidate(cache, cancelled)
    return cancelled


async def update_status(
    database: Database, cache: Cache, principal: Principal, booking_id: uuid.UUID, data: StatusUpdate, *, now: datetime
) -> Booking:
    """updateBookingStatus: the mentor marks a confirmed session completed, or the student a no-show,
    once it has started; an admin may make any transition of the state machine (a cancellation goes
    through cancel_booking, so it records the refund the same way)."""
    if data.status == "cancelled":
        return await cancel_booking(database, cache, principal, booking_id, data.reason, now=now)
    async with database.transaction() as conn:
        booking, role = await _load_for_change(conn, principal, booking_id)
        check_transition(booking.status, data.status, role)
        if role == "mentor" and now < booking.start:
            raise SessionNotStarted(extra={"start": booking.start.isoformat()})
        if data.status == "no_show":
            party: NoShowParty | None = data.no_show_party or ("student" if role == "mentor" else None)
            if party is None:
                raise NoShowPartyRequired()
            if role == "mentor" and party != "student":
                raise TransitionNotAllowed(booking.status, data.status, role)
            refund = Policy.no_show_refund(booking.price.amount_minor, party)
            updated = await repository.set_no_show(conn, booking.id, party, refund, now)
        else:
            updated = await repository.set_status(conn, booking.id, data.status, now)
    await _invalidate(cache, updated)
    return updated


# --- changes by the system (payment orchestration, housekeeping) ----------------------------------


async def _system_transition(
    database: Database, cache: Cache, booking_id: uuid.UUID, target: Status, now: datetime
) -> Booking:
    async with database.transaction() as conn:
        booking = await repository.fetch_booking(conn, booking_id, for_update=True)
        if booking is None:
            raise BookingNotFound()
        if booking.status == target:
            return booking  # a retried activity: already done
        check_transition(booking.status, target, "system")
        updated = await repository.set_status(conn, booking.id, target, now)
    await _invalidate(cache, updated)
    return updated


async def confirm_booking(database: Database, cache: Cache, booking_id: uuid.UUID, *, now: datetime) -> Booking:
    """The payment succeeded: pending_payment -> confirmed. Idempotent; 409 invalid_transition from
    any other status (an expired or cancelled booking is not revived: the payment flow refunds)."""
    return await _system_transition(database, cache, booking_id, "confirmed", now)


async def expire_booking(database: Database, cache: Cache, booking_id: uuid.UUID, *, now: datetime) -> Booking:
    """The hold ran out unpaid: pending_payment -> expired, releasing the slot. Idempotent; 409
    invalid_transition from any other status (a confirmed booking stays confirmed)."""
    return await _system_transition(database, cache, booking_id, "expired", now)


async def expire_stale_holds(database: Database, cache: Cache, *, now: datetime) -> int:
    """Housekeeping backstop for the payment orchestration: expire every pending_payment booking
    whose hold ended at or before `now`, in batches; returns how many."""
    expired = 0
    while True:
        async with database.transaction() as conn:
            participants = await repository.expire_stale_holds(conn, now, EXPIRE_BATCH)
        for student_id, mentor_id in set(participants):
            await invalidate_participants(cache, student_id=student_id, mentor_id=mentor_id)
        expired += len(participants)
        if len(participants) < EXPIRE_BATCH:
            return expired


async def purge_idempotency_keys(database: Database, *, older_than: datetime) -> int:
    async with database.transaction() as conn:
        return await idempotency.purge_older_than(conn, older_than)
