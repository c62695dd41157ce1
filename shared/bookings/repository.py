"""SQL for bookings and their reschedule links. Every value is a bind parameter."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from shared.bookings.models import Booking, BookingQuery, Cancellation
from shared.bookings.policy import NoShowParty, Policy
from shared.bookings.states import Status
from shared.db.database import Connection
from shared.db.errors import translate_errors
from shared.errors import Conflict
from shared.mentors.models import Money


class SlotTaken(Conflict):
    code = "slot_taken"
    title = "The mentor already has a booking at this time"


class StudentBusy(Conflict):
    code = "student_busy"
    title = "You already have a booking at this time"


class OverlapRace(Exception):
    """Two overlapping bookings were being written at the same instant: each waited for the other
    on the exclusion constraint and PostgreSQL broke the deadlock by failing this one. Running the
    transaction again gets the real answer (slot_taken, student_busy or success); the service does,
    so this never reaches a caller."""


_OVERLAPS = {
    "bookings_mentor_no_overlap": SlotTaken,
    "bookings_student_no_overlap": StudentBusy,
}


@contextmanager
def _overlap_races() -> Iterator[None]:
    # An exclusion constraint is checked after the row's index entry is written, so two concurrent
    # overlapping writes can each see the other's entry and wait for each other.
    try:
        yield
    except asyncpg.DeadlockDetectedError as exc:
        raise OverlapRace() from exc


# Every statement that returns a booking returns these (a constant, never input).
COLUMNS = """
b.id, b.student_id, b.mentor_id, b.scheduled_at, b.ends_at, b.status, b.price_minor, b.currency,
b.commission_bps, b.policy, b.notes, b.hold_expires_at, b.confirmed_at, b.cancelled_by, b.cancelled_by_role,
b.cancellation_reason, b.cancelled_at, b.refund_due_minor, b.no_show_party, b.reschedule_count,
b.created_at, b.updated_at
"""


SELECT = "SELECT " + COLUMNS
RETURNING = "RETURNING " + COLUMNS


def booking_from_row(row: asyncpg.Record) -> Booking:
    cancellation = None
    if row["cancelled_at"] is not None:
        cancellation = Cancellation(
            by=row["cancelled_by"],
            role=row["cancelled_by_role"],
            reason=row["cancellation_reason"],
            at=row["cancelled_at"],
        )
    return Booking(
        id=row["id"],
        student_id=row["student_id"],
        mentor_id=row["mentor_id"],
        start=row["scheduled_at"],
        end=row["ends_at"],
        length_minutes=int((row["ends_at"] - row["scheduled_at"]).total_seconds() // 60),
        status=row["status"],
        price=Money(amount_minor=row["price_minor"], currency=row["currency"]),
        commission_bps=row["commission_bps"],
        policy=Policy.model_validate(row["policy"]),
        notes=row["notes"],
        hold_expires_at=row["hold_expires_at"],
        confirmed_at=row["confirmed_at"],
        cancellation=cancellation,
        refund_due_minor=row["refund_due_minor"],
        no_show_party=row["no_show_party"],
        reschedule_count=row["reschedule_count"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


@dataclass(frozen=True, slots=True)
class NewBooking:
    student_id: uuid.UUID
    mentor_id: uuid.UUID
    start: datetime
    end: datetime
    price_minor: int
    currency: str
    policy: Policy
    notes: str
    now: datetime

    @property
    def is_free(self) -> bool:
        return self.price_minor == 0


INSERT_BOOKING = (
    """
INSERT INTO bookings AS b (student_id, mentor_id, scheduled_at, ends_at, status, price_minor, currency,
                           commission_bps, policy, notes, hold_expires_at, confirmed_at, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)
"""
    + RETURNING
)


async def insert_booking(conn: Connection, new: NewBooking) -> Booking:
    """Insert the booking: pending_payment holding its slot for the policy's hold, or, when it is
    free, confirmed at once with no hold. SlotTaken / StudentBusy when it overlaps one that holds its slot."""
    with translate_errors(_OVERLAPS), _overlap_races():
        row = await conn.fetchrow(
            INSERT_BOOKING,
            new.student_id,
            new.mentor_id,
            new.start,
            new.end,
            "confirmed" if new.is_free else "pending_payment",
            new.price_minor,
            new.currency,
            new.policy.commission_bps,
            new.policy.snapshot(),
            new.notes,
            None if new.is_free else new.policy.hold_expires_at(new.now),
            new.now if new.is_free else None,
            new.now,
        )
    assert row is not None
    return booking_from_row(row)


SELECT_BOOKING = SELECT + "FROM bookings b WHERE b.id = $1"
SELECT_BOOKING_FOR_UPDATE = SELECT_BOOKING + " FOR UPDATE"


async def fetch_booking(conn: Connection, booking_id: uuid.UUID, *, for_update: bool = False) -> Booking | None:
    row = await conn.fetchrow(SELECT_BOOKING_FOR_UPDATE if for_update else SELECT_BOOKING, booking_id)
    return None if row is None else booking_from_row(row)


SELECT_STATUSES = "SELECT b.id, b.status FROM bookings b WHERE b.id = ANY($1::uuid[])"


async def fetch_statuses(conn: Connection, booking_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Status]:
    """The status of each of these bookings that exists."""
    return {row["id"]: row["status"] for row in await conn.fetch(SELECT_STATUSES, list(booking_ids))}


# Bookings that ended without a session (cancelled, no-show, expired), by when they last changed.
SELECT_ENDED_SINCE = """
SELECT b.id, b.updated_at FROM bookings b
WHERE b.status IN ('cancelled', 'no_show', 'expired') AND b.updated_at >= $1
  AND (b.updated_at, b.id) > ($2, $3)
ORDER BY b.updated_at, b.id LIMIT $4
"""


async def fetch_ended_since(
    conn: Connection, since: datetime, *, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[tuple[uuid.UUID, datetime]]:
    """One page of (id, updated_at) of the bookings that ended since `since`, after the keyset `after`."""
    after_at, after_id = after or (since, uuid.UUID(int=0))
    rows = await conn.fetch(SELECT_ENDED_SINCE, since, after_at, after_id, limit)
    return [(row["id"], row["updated_at"]) for row in rows]


SET_STATUS = (
    """
UPDATE bookings AS b
SET status = $2, updated_at = $3, confirmed_at = CASE WHEN $2 = 'confirmed' THEN $3 ELSE b.confirmed_at END
WHERE b.id = $1
"""
    + RETURNING
)
SET_NO_SHOW = (
    """
UPDATE bookings AS b SET status = 'no_show', no_show_party = $2, refund_due_minor = $3, updated_at = $4
WHERE b.id = $1
"""
    + RETURNING
)
SET_CANCELLED = (
    """
UPDATE bookings AS b SET status = 'cancelled', cancelled_by = $2, cancelled_by_role = $3,
    cancellation_reason = $4, cancelled_at = $5, refund_due_minor = $6, updated_at = $5
WHERE b.id = $1
"""
    + RETURNING
)


async def set_status(conn: Connection, booking_id: uuid.UUID, status: Status, now: datetime) -> Booking:
    """A transition that records nothing but the status and, for confirmed, when (confirmed_at)."""
    row = await conn.fetchrow(SET_STATUS, booking_id, status, now)
    assert row is not None
    return booking_from_row(row)


async def set_no_show(
    conn: Connection, booking_id: uuid.UUID, party: NoShowParty, refund_due_minor: int, now: datetime
) -> Booking:
    row = await conn.fetchrow(SET_NO_SHOW, booking_id, party, refund_due_minor, now)
    assert row is not None
    return booking_from_row(row)


@dataclass(frozen=True, slots=True)
class CancellationRecord:
    by: uuid.UUID
    role: str
    reason: str | None
    at: datetime
    refund_due_minor: int


async def set_cancelled(conn: Connection, booking_id: uuid.UUID, record: CancellationRecord) -> Booking:
    row = await conn.fetchrow(
        SET_CANCELLED, booking_id, record.by, record.role, record.reason, record.at, record.refund_due_minor
    )
    assert row is not None
    return booking_from_row(row)


MOVE_BOOKING = (
    """
UPDATE bookings AS b SET scheduled_at = $2, ends_at = $3, reschedule_count = reschedule_count + 1, updated_at = $4
WHERE b.id = $1
"""
    + RETURNING
)
INSERT_RESCHEDULE = """
INSERT INTO booking_reschedules (booking_id, old_start, old_end, new_start, new_end, rescheduled_by, reason, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""


async def move_booking(
    conn: Connection,
    booking: Booking,
    *,
    start: datetime,
    end: datetime,
    by: uuid.UUID,
    reason: str | None,
    now: datetime,
) -> Booking:
    """Move the booking to new times in place and link old to new (inside a transaction).

    The exclusion constraints re-check the new range against every other booking as part of the
    update, so a concurrent booking of the new slot loses one way or the other.
    """
    with translate_errors(_OVERLAPS), _overlap_races():
        row = await conn.fetchrow(MOVE_BOOKING, booking.id, start, end, now)
    assert row is not None
    await conn.execute(INSERT_RESCHEDULE, booking.id, booking.start, booking.end, start, end, by, reason, now)
    return booking_from_row(row)


SELECT_LAST_RESCHEDULED_BY = """
SELECT rescheduled_by FROM booking_reschedules WHERE booking_id = $1 ORDER BY id DESC LIMIT 1
"""


async def fetch_last_rescheduled_by(conn: Connection, booking_id: uuid.UUID) -> uuid.UUID | None:
    """Who made the booking's latest reschedule, None if it was never moved."""
    by: uuid.UUID | None = await conn.fetchval(SELECT_LAST_RESCHEDULED_BY, booking_id)
    return by


# --- slots held -----------------------------------------------------------------------------------

SELECT_BUSY = """
SELECT scheduled_at, ends_at FROM bookings
WHERE mentor_id = $1 AND status IN ('pending_payment', 'confirmed') AND scheduled_at < $3 AND ends_at > $2
ORDER BY scheduled_at
"""


async def fetch_busy_intervals(
    conn: Connection, mentor_id: uuid.UUID, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """The mentor's bookings that hold their slot and overlap [start, end)."""
    rows = await conn.fetch(SELECT_BUSY, mentor_id, start, end)
    return [(row["scheduled_at"], row["ends_at"]) for row in rows]


# --- housekeeping ---------------------------------------------------------------------------------

EXPIRE_STALE_HOLDS = """
UPDATE bookings SET status = 'expired', updated_at = $1
WHERE id IN (
    SELECT id FROM bookings
    WHERE status = 'pending_payment' AND hold_expires_at <= $1
    ORDER BY hold_expires_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
RETURNING student_id, mentor_id
"""


async def expire_stale_holds(conn: Connection, now: datetime, limit: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Expire up to `limit` unpaid bookings whose hold ended; (student_id, mentor_id) of each."""
    rows = await conn.fetch(EXPIRE_STALE_HOLDS, now, limit)
    return [(row["student_id"], row["mentor_id"]) for row in rows]


# --- lists ----------------------------------------------------------------------------------------

PARTICIPANT_COLUMN = {"student": "b.student_id", "mentor": "b.mentor_id"}


def list_query(
    user_id: uuid.UUID, role: str, query: BookingQuery, after: tuple[datetime, uuid.UUID] | None
) -> tuple[str, list[Any]]:
    """The statement for one page of a participant's bookings, newest start first, id breaking ties.

    The order matches bookings_{student,mentor}_id_scheduled_at_idx, so a page is an index range scan.
    """
    params: list[Any] = []

    def bind(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    conditions = [f"{PARTICIPANT_COLUMN[role]} = {bind(user_id)}"]
    if query.status is not None:
        conditions.append(f"b.status = {bind(query.status)}")
    if query.start is not None:
        conditions.append(f"b.scheduled_at >= {bind(query.start)}")
    if query.end is not None:
        conditions.append(f"b.scheduled_at < {bind(query.end)}")
    if after is not None:
        conditions.append(f"(b.scheduled_at, b.id) < ({bind(after[0])}::timestamptz, {bind(after[1])}::uuid)")
    where = " AND ".join(conditions)
    sql = (
        f"{SELECT}FROM bookings b WHERE {where}\nORDER BY b.scheduled_at DESC, b.id DESC LIMIT {bind(query.limit + 1)}"
    )
    return sql, params


async def list_bookings(
    conn: Connection, user_id: uuid.UUID, role: str, query: BookingQuery, after: tuple[datetime, uuid.UUID] | None
) -> Sequence[Booking]:
    sql, params = list_query(user_id, role, query, after)
    return [booking_from_row(row) for row in await conn.fetch(sql, *params)]
