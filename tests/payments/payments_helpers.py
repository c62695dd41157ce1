"""Test verbs for the payment flow: users and bookings in the database, the app over HTTP, the
orchestration through the Durable HTTP API, and the final booking/payment/refund rows."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
from api_support import ROOT, Client, Reply, User, insert_user

from devhost.clock import VirtualClock
from devhost.durable.harness import DurableHttpHarness
from devhost.fakes.razorpay import FakeRazorpay
from devhost.fakes.stripe import FakeStripe
from devhost.host import builtin_service_factories
from devhost.testing import HostThread
from shared.bookings.policy import Policy
from shared.config import get_settings

PRICE = {"INR": 150_000, "USD": 4_500, "EUR": 6_000}


def reset(razorpay: FakeRazorpay, stripe: FakeStripe, host: HostThread) -> None:
    """Fresh fakes (no objects, faults or switches left over) whose webhooks go to `host`."""
    for fake in (razorpay, stripe):
        fake.reset()
    aim_webhooks(razorpay, stripe, host)


def aim_webhooks(razorpay: FakeRazorpay, stripe: FakeStripe, host: HostThread) -> None:
    """Send both fakes' webhooks to the app on `host`."""
    razorpay.set_webhook_url(f"{host.url}/api/payments/razorpay/webhook")
    stripe.set_webhook_url(f"{host.url}/api/payments/stripe/webhook")


def serve(clock: VirtualClock) -> HostThread:
    """The app on a devhost with its built-in services (Durable engine, timers) on `clock`."""
    return HostThread(ROOT, clock=clock, services=builtin_service_factories())


@dataclass
class Rows:
    booking: dict[str, Any]
    payment: dict[str, Any] | None
    refund: dict[str, Any] | None


@dataclass
class Flow:
    host: HostThread
    http: aiohttp.ClientSession
    db: asyncpg.Connection
    razorpay: FakeRazorpay
    stripe: FakeStripe

    @property
    def clock(self) -> VirtualClock:
        assert isinstance(self.host.clock, VirtualClock)
        return self.host.clock

    @property
    def durable(self) -> DurableHttpHarness:
        return DurableHttpHarness(self.host.url, clock=self.clock)

    # --- people and bookings ---------------------------------------------------------------------

    async def user(self, role: str) -> User:
        return await insert_user(self.db, role)

    async def booking(
        self, currency: str = "INR", *, student: User | None = None, hold: timedelta = timedelta(minutes=15)
    ) -> tuple[uuid.UUID, User]:
        """A pending_payment booking (as createBooking leaves it) holding its slot for `hold` of virtual time."""
        student = student or await self.user("student")
        mentor = await self.user("mentor")
        await self.db.execute(
            "INSERT INTO mentors (id, headline, timezone, hourly_rate_minor, currency)"
            " VALUES ($1, 'Mentor', 'UTC', $2, $3)",
            mentor.id,
            PRICE[currency],
            currency,
        )
        start = self.clock.now() + timedelta(days=3)
        booking_id = await self.db.fetchval(
            """
            INSERT INTO bookings (student_id, mentor_id, scheduled_at, ends_at, price_minor, currency,
                                  commission_bps, policy, hold_expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, 1500, $7, $8) RETURNING id
            """,
            student.id,
            mentor.id,
            start,
            start + timedelta(hours=1),
            PRICE[currency],
            currency,
            Policy.from_settings(get_settings()).model_dump_json(),
            self.clock.now() + hold,
        )
        return booking_id, student

    async def bookable_mentor(self, currency: str) -> User:
        """A mentor open 08:00-20:00 UTC every day (60-minute slots on the hour), priced in `currency`."""
        mentor = await self.user("mentor")
        await self.db.execute(
            "INSERT INTO mentors (id, headline, timezone, hourly_rate_minor, currency, min_notice_minutes)"
            " VALUES ($1, 'Mentor', 'UTC', $2, $3, 60)",
            mentor.id,
            PRICE[currency],
            currency,
        )
        await self.db.executemany(
            "INSERT INTO mentor_weekly_hours (mentor_id, weekday, start_time, end_time)"
            " VALUES ($1, $2, '08:00', '20:00')",
            [(mentor.id, weekday) for weekday in range(1, 8)],
        )
        return mentor

    # --- HTTP -------------------------------------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        user: User | None = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        return await Client(self.http, self.host.url).call(method, path, body, user=user, raw=raw, headers=headers)

    async def start_payment(self, booking_id: uuid.UUID, student: User) -> Reply:
        return await self.call("POST", f"bookings/{booking_id}/payment", user=student)

    async def checkout(self, currency: str = "INR") -> tuple[uuid.UUID, User, dict[str, Any]]:
        """Book and start paying: the booking, its student and the checkout the app answered with."""
        booking_id, student = await self.booking(currency)
        reply = await self.start_payment(booking_id, student)
        assert reply.status == 200, reply.body
        return booking_id, student, reply.body["checkout"]

    # --- the orchestration ------------------------------------------------------------------------

    async def finished(self, booking_id: uuid.UUID) -> dict[str, Any]:
        """The orchestration's final status (Completed with the activity's outcome as output)."""
        return await asyncio.to_thread(self.durable.wait, str(booking_id), seconds=20.0)

    async def waiting_for_payment(self, booking_id: uuid.UUID) -> dict[str, Any]:
        status = await asyncio.to_thread(self.durable.wait, str(booking_id), {"Running"}, 20.0)
        await self.eventually(lambda: self._custom_state(booking_id, "awaiting_payment"))
        return status

    async def _custom_state(self, booking_id: uuid.UUID, state: str) -> bool:
        status = await asyncio.to_thread(self.durable.status, str(booking_id))
        return bool(status and (status.get("customStatus") or {}).get("state") == state)

    async def advance(self, delta: timedelta) -> None:
        await asyncio.to_thread(self.clock.advance, delta)

    async def set_clock(self, when: datetime) -> None:
        await asyncio.to_thread(self.clock.set, when)

    async def timers_created(self, booking_id: uuid.UUID, count: int) -> None:
        """Wait until the orchestration has scheduled `count` durable timers (retry back-offs, the hold)."""

        async def scheduled() -> bool:
            try:
                history = await asyncio.to_thread(self.durable.history, str(booking_id))
            except LookupError:  # not started yet
                return False
            return [e["EventType"] for e in history].count("TimerCreated") >= count

        await self.eventually(scheduled)

    async def reconcile(self) -> None:
        """Fire the reconciliation timer now (what the admin API does) and wait for it to finish."""
        await asyncio.to_thread(self.host.call, self.host.host.fire("reconcile_payments"))

    # --- rows -------------------------------------------------------------------------------------

    async def rows(self, booking_id: uuid.UUID) -> Rows:
        booking = await self.db.fetchrow("SELECT * FROM bookings WHERE id = $1", booking_id)
        payment = await self.db.fetchrow("SELECT * FROM payments WHERE booking_id = $1", booking_id)
        refund = None
        if payment is not None:
            refund = await self.db.fetchrow(
                "SELECT * FROM refunds WHERE payment_id = $1 ORDER BY attempt DESC LIMIT 1", payment["id"]
            )
        assert booking is not None
        return Rows(dict(booking), None if payment is None else dict(payment), None if refund is None else dict(refund))

    async def refund_count(self, booking_id: uuid.UUID) -> int:
        return int(
            await self.db.fetchval(
                "SELECT count(*) FROM refunds r JOIN payments p ON p.id = r.payment_id WHERE p.booking_id = $1",
                booking_id,
            )
        )

    async def eventually(self, check: Callable[[], Awaitable[bool]], seconds: float = 20.0) -> None:
        """Poll (real time) until `check` holds; the flow's steps run on the host's threads."""
        deadline = time.monotonic() + seconds
        while not await check():
            if time.monotonic() > deadline:
                raise TimeoutError("the condition did not hold in time")
            await asyncio.sleep(0.05)

    async def settled(self, booking_id: uuid.UUID, booking: str, payment: str) -> Rows:
        """Wait until the booking and its payment reach these statuses; return the rows."""

        async def reached() -> bool:
            rows = await self.rows(booking_id)
            return rows.booking["status"] == booking and (rows.payment or {}).get("status") == payment

        try:
            await self.eventually(reached)
        except TimeoutError:
            rows = await self.rows(booking_id)
            raise AssertionError(
                f"expected {booking}/{payment}, got {rows.booking['status']}/{(rows.payment or {}).get('status')}"
            ) from None
        return await self.rows(booking_id)


def later(when: datetime, seconds: float) -> datetime:
    return when + timedelta(seconds=seconds)
