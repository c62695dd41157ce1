"""Bookings written straight into the database, for tests that need a booking in a given status
without going through the bookings routes: one INSERT for every test, and a `History` that seeds
users, listed mentors, bookings and reviews on one connection.

Imported by name from the tests/ folder (which pytest puts on sys.path for tests/conftest.py).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from api_support import Client, Reply, User, insert_user, is_problem

from shared.bookings.policy import Policy

__all__ = ["INSERT_BOOKING", "Client", "History", "Reply", "User", "insert_booking", "is_problem", "policy"]

INSERT_BOOKING = """
INSERT INTO bookings (student_id, mentor_id, scheduled_at, ends_at, status, price_minor, currency, commission_bps,
                      policy, hold_expires_at, cancelled_at, cancelled_by, cancelled_by_role, refund_due_minor,
                      no_show_party, confirmed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $14, $15, $16)
RETURNING id
"""


def policy(commission_bps: int) -> Policy:
    return Policy(
        commission_bps=commission_bps,
        full_refund_cutoff_hours=24,
        late_cancel_refund_percent=50,
        reschedule_cutoff_hours=24,
        hold_minutes=15,
    )


async def insert_booking(
    conn: asyncpg.Connection[Any],
    *,
    student: User,
    mentor: User,
    start: datetime,
    status: str,
    policy: Policy,
    minutes: int = 60,
    price_minor: int,
    currency: str = "INR",
    refund_due_minor: int | None = None,
    no_show_party: str | None = None,
    paid: bool | None = None,
) -> uuid.UUID:
    """A booking row as the bookings feature would leave it in `status`, carrying `policy` as its
    snapshot: a held one holds for the policy's minutes, a cancelled one says the student cancelled
    it now, and a no-show names its party (the student unless told otherwise). `paid` sets
    confirmed_at; by default confirmed, completed and no-show bookings were paid, others not."""
    cancelled = status == "cancelled"
    now = datetime.now(UTC)
    if status == "no_show" and no_show_party is None:
        no_show_party = "student"
    booking_id: uuid.UUID = await conn.fetchval(
        INSERT_BOOKING,
        student.id,
        mentor.id,
        start,
        start + timedelta(minutes=minutes),
        status,
        price_minor,
        currency,
        policy.commission_bps,
        json.dumps(policy.snapshot()),
        now + timedelta(minutes=policy.hold_minutes) if status == "pending_payment" else None,
        now if cancelled else None,
        student.id if cancelled else None,
        "student" if cancelled else None,
        refund_due_minor,
        no_show_party,
        now if (paid if paid is not None else status in ("confirmed", "completed", "no_show")) else None,
    )
    return booking_id


class History:
    """Writes users, mentor profiles and bookings with SQL, as a seeded history."""

    def __init__(self, conn: asyncpg.Connection[Any]) -> None:
        self.conn = conn

    async def user(self, role: str, name: str | None = None) -> User:
        return await insert_user(self.conn, role, name)

    async def mentor(self, *, skill: str = "python") -> User:
        """A mentor-role user with a listed profile."""
        user = await self.user("mentor")
        await self.conn.execute(
            "INSERT INTO mentors (id, headline, timezone, hourly_rate_minor, currency, skills) "
            "VALUES ($1, 'Engineer', 'UTC', 100000, 'INR', ARRAY[$2])",
            user.id,
            skill,
        )
        return user

    async def booking(
        self,
        student: User,
        mentor: User,
        *,
        status: str,
        start: datetime,
        minutes: int = 60,
        price_minor: int = 100_000,
        currency: str = "INR",
        commission_bps: int = 1500,
        refund_due_minor: int | None = None,
        no_show_party: str | None = None,
        paid: bool | None = None,
    ) -> uuid.UUID:
        """A booking in `status` under the default policy with `commission_bps` (see insert_booking);
        `paid` as there."""
        return await insert_booking(
            self.conn,
            student=student,
            mentor=mentor,
            start=start,
            status=status,
            policy=policy(commission_bps),
            minutes=minutes,
            price_minor=price_minor,
            currency=currency,
            refund_due_minor=refund_due_minor,
            no_show_party=no_show_party,
            paid=paid,
        )

    async def review(self, booking_id: uuid.UUID, *, rating: int, created_at: datetime, text: str = "") -> uuid.UUID:
        """A review of a booking, written at `created_at` (the booking's parties are copied from it)."""
        review_id: uuid.UUID = await self.conn.fetchval(
            "INSERT INTO reviews (booking_id, mentor_id, student_id, rating, body, created_at) "
            "SELECT id, mentor_id, student_id, $2, $3, $4 FROM bookings WHERE id = $1 RETURNING id",
            booking_id,
            rating,
            text,
            created_at,
        )
        return review_id
