"""Helpers for the bookings tests: an HTTP client, users with tokens, mentors with open hours, and
bookings seeded straight into the database in any status."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg

from shared.auth.principal import Principal
from shared.auth.tokens import issue_access_token
from shared.bookings.policy import Policy
from shared.config import get_settings

POLICY = Policy(
    commission_bps=1500,
    full_refund_cutoff_hours=24,
    late_cancel_refund_percent=0,
    reschedule_cutoff_hours=24,
    hold_minutes=15,
)
RATE_MINOR = 150_000  # per hour, INR paise


@dataclass
class User:
    id: uuid.UUID
    role: str
    token: str

    @property
    def principal(self) -> Principal:
        return Principal(self.id, self.role, uuid.uuid4())


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class Client:
    http: aiohttp.ClientSession
    base: str

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        user: User | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        sent = {"Content-Type": "application/json", **(headers or {})}
        if user is not None:
            sent["Authorization"] = f"Bearer {user.token}"
        data = None if body is None else json.dumps(body).encode()
        async with self.http.request(method, f"{self.base}/api/{path}", data=data, headers=sent) as response:
            content = await response.read()
            return Reply(response.status, dict(response.headers), json.loads(content) if content else None)


def is_problem(reply: Reply, status: int, code: str) -> bool:
    return (
        reply.status == status
        and reply.headers.get("Content-Type", "").startswith("application/problem+json")
        and reply.body["code"] == code
    )


async def insert_user(conn: asyncpg.Connection, role: str) -> User:
    user_id = await conn.fetchval(
        "INSERT INTO users (email, name, role, password_hash) VALUES ($1, $2, $3, 'unused') RETURNING id",
        f"{uuid.uuid4().hex[:12]}@example.com",
        f"{role.title()} {uuid.uuid4().hex[:4]}",
        role,
    )
    token = issue_access_token(
        get_settings().signing_key(),
        user_id=user_id,
        role=role,
        version=1,
        session_id=uuid.uuid4(),
        now=int(time.time()),
        ttl_s=900,
    )
    return User(user_id, role, token)


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
    """A booking in `status`, written directly (the state-machine tests need every status)."""
    cancelled = status == "cancelled"
    booking_id: uuid.UUID = await conn.fetchval(
        """INSERT INTO bookings (student_id, mentor_id, scheduled_at, ends_at, status, price_minor, currency,
                                 commission_bps, policy, hold_expires_at, no_show_party, cancelled_at,
                                 cancelled_by, cancelled_by_role)
           VALUES ($1, $2, $3, $4, $5, $6, 'INR', $7, $8::jsonb, $9, $10, $11, $12, $13) RETURNING id""",
        student.id,
        mentor.id,
        start,
        start + timedelta(minutes=minutes),
        status,
        price_minor,
        policy.commission_bps,
        json.dumps(policy.snapshot()),
        datetime.now(UTC) + timedelta(minutes=policy.hold_minutes) if status == "pending_payment" else None,
        "student" if status == "no_show" else None,
        datetime.now(UTC) if cancelled else None,
        student.id if cancelled else None,
        "student" if cancelled else None,
    )
    return booking_id
