"""Helpers for the bookings tests: their policy and rate, mentors with open hours, slot times, and
bookings seeded straight into the database in any status.

The client, users and problem check are tests/api_support.py's, and the booking row is written by
tests/booking_history.py; they are re-exported here so the bookings tests import from one place.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
from api_support import Client, MakeUser, Reply, User, insert_user, is_problem
from booking_history import insert_booking

from shared.bookings.policy import Policy

__all__ = [
    "POLICY",
    "RATE_MINOR",
    "Client",
    "MakeMentor",
    "MakeUser",
    "Reply",
    "User",
    "insert_mentor",
    "insert_user",
    "is_problem",
    "seed_booking",
    "slot",
]

POLICY = Policy(
    commission_bps=1500,
    full_refund_cutoff_hours=24,
    late_cancel_refund_percent=0,
    reschedule_cutoff_hours=24,
    hold_minutes=15,
)
RATE_MINOR = 150_000  # per hour, INR paise

MakeMentor = Callable[..., Awaitable[User]]
"""The `make_mentor` fixture: insert_mentor's options in, a listed mentor with a token out."""


async def insert_mentor(
    conn: asyncpg.Connection,
    *,
    rate_minor: int = RATE_MINOR,
    min_notice_minutes: int = 60,
    window_days: int = 60,
    lengths: tuple[int, ...] = (30, 60),
) -> User:
    """A listed mentor in UTC, open 08:00-20:00 every day, so 60-minute slots start on the hour."""
    user = await insert_user(conn, "mentor")
    await conn.execute(
        """INSERT INTO mentors (id, headline, timezone, hourly_rate_minor, currency, min_notice_minutes,
                                booking_window_days, session_lengths)
           VALUES ($1, 'Mentor', 'UTC', $2, 'INR', $3, $4, $5)""",
        user.id,
        rate_minor,
        min_notice_minutes,
        window_days,
        list(lengths),
    )
    await conn.executemany(
        "INSERT INTO mentor_weekly_hours (mentor_id, weekday, start_time, end_time) VALUES ($1, $2, '08:00', '20:00')",
        [(user.id, weekday) for weekday in range(1, 8)],
    )
    return user


def slot(days_ahead: int, hour: int, minute: int = 0) -> datetime:
    """A slot start (UTC) `days_ahead` days from today at hour:minute; 08:00-19:00 are open."""
    day = datetime.now(UTC).date() + timedelta(days=days_ahead)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


async def seed_booking(
    conn: asyncpg.Connection,
    *,
    student: User,
    mentor: User,
    start: datetime,
    status: str = "confirmed",
    minutes: int = 60,
    price_minor: int = RATE_MINOR,
    policy: Policy = POLICY,
) -> uuid.UUID:
    """A booking in `status` at the bookings tests' rate and policy (the state-machine tests need
    every status)."""
    return await insert_booking(
        conn,
        student=student,
        mentor=mentor,
        start=start,
        status=status,
        policy=policy,
        minutes=minutes,
        price_minor=price_minor,
    )
