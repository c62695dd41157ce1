"""Helpers for tests that need bookings before the bookings routes exist in the test: users, mentor
profiles and bookings inserted directly with SQL, an HTTP client for the app served by devhost, and
access tokens from the accounts feature's own issuer.

Imported by name from the tests/ folder (which pytest puts on sys.path for tests/conftest.py).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg

from shared.auth.tokens import issue_access_token
from shared.bookings.policy import Policy
from shared.config import get_settings


@dataclass
class User:
    id: uuid.UUID
    role: str
    token: str
    name: str


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
        self, method: str, path: str, body: Any = None, *, user: User | None = None, raw: bytes | None = None
    ) -> Reply:
        headers = {"Content-Type": "application/json"}
        if user is not None:
            headers["Authorization"] = f"Bearer {user.token}"
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        async with self.http.request(method, f"{self.base}/api/{path}", data=data, headers=headers) as response:
            content = await response.read()
            return Reply(response.status, dict(response.headers), json.loads(content) if content else None)


def is_problem(reply: Reply, status: int, code: str) -> bool:
    return (
        reply.status == status
        and reply.headers["Content-Type"].startswith("application/problem+json")
        and reply.body["code"] == code
    )


INSERT_BOOKING = """
INSERT INTO bookings (student_id, mentor_id, scheduled_at, ends_at, status, price_minor, currency, commission_bps,
                      policy, hold_expires_at, cancelled_at, cancelled_by, cancelled_by_role, refund_due_minor,
                      no_show_party)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $14, $15)
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


class History:
    """Writes users, mentor profiles and bookings with SQL, as a seeded history."""

    def __init__(self, conn: asyncpg.Connection[Any]) -> None:
        self.conn = conn

    async def user(self, role: str, name: str | None = None) -> User:
        name = name or f"{role.title()} {uuid.uuid4().hex[:4]}"
        user_id = await self.conn.fetchval(
            "INSERT INTO users (email, name, role, password_hash) VALUES ($1, $2, $3, 'unused') RETURNING id",
            f"{uuid.uuid4().hex[:12]}@example.com",
            name,
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
        return User(user_id, role, token, name)

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
    ) -> uuid.UUID:
        """A booking row as the bookings feature would leave it in `status` (cancelled ones carry who
        and when; a no-show names its party, the student unless told otherwise)."""
        cancelled = status == "cancelled"
        now = datetime.now(UTC)
        if status == "no_show" and no_show_party is None:
            no_show_party = "student"
        booking_id: uuid.UUID = await self.conn.fetchval(
            INSERT_BOOKING,
            student.id,
            mentor.id,
            start,
            start + timedelta(minutes=minutes),
            status,
            price_minor,
            currency,
            commission_bps,
            json.dumps(policy(commission_bps).snapshot()),
            now + timedelta(minutes=15) if status == "pending_payment" else None,
            now if cancelled else None,
            student.id if cancelled else None,
            "student" if cancelled else None,
            refund_due_minor,
            no_show_party,
        )
        return booking_id

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
