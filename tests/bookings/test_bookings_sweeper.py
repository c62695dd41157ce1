"""The housekeeping timer, fired by devhost's virtual clock: it expires unpaid bookings whose hold
ended (the payment orchestration's backstop) and forgets Idempotency-Keys past their retention."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import asyncpg
import pytest
from api_support import serve_app
from bookings_helpers import Client, MakeMentor, MakeUser, seed_booking, slot

from devhost.clock import VirtualClock
from devhost.host import builtin_service_factories
from devhost.testing import HostThread
from devhost.timers import TimerScheduler


@pytest.fixture(scope="module")
def app_host(payments_env: dict[str, str]) -> Iterator[HostThread]:
    """The app with its timer listeners running on a virtual clock."""
    yield from serve_app(clock=VirtualClock(), services=builtin_service_factories())


async def test_the_sweeper_expires_stale_holds_every_minute(
    api: Client, app_host: HostThread, db: asyncpg.Connection, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    clock = app_host.clock
    assert isinstance(clock, VirtualClock)
    scheduler = next(s for s in app_host.host.services if isinstance(s, TimerScheduler))
    assert "expire_stale_holds" in scheduler.function_names

    async def tick() -> None:
        clock.advance(timedelta(minutes=1))
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(scheduler.quiesce(), app_host.loop))

    student, mentor = await make_user("student"), await make_mentor()
    stale = await seed_booking(db, student=student, mentor=mentor, start=slot(3, 9), status="pending_payment")
    fresh = await seed_booking(db, student=student, mentor=mentor, start=slot(3, 11), status="pending_payment")
    paid = await seed_booking(db, student=student, mentor=mentor, start=slot(3, 13), status="confirmed")
    await db.execute("UPDATE bookings SET hold_expires_at = now() - interval '1 second' WHERE id = $1", stale)
    old_key = await db.fetchval(
        """INSERT INTO idempotency_keys (user_id, operation, key, fingerprint, response_status, response_body,
                                         created_at)
           VALUES ($1, 'create_booking', 'old', '\\x00', 201, '{}', now() - interval '25 hours') RETURNING key""",
        student.id,
    )
    await db.execute(
        """INSERT INTO idempotency_keys (user_id, operation, key, fingerprint, response_status, response_body)
           VALUES ($1, 'create_booking', 'recent', '\\x00', 201, '{}')""",
        student.id,
    )
    cached = await api.call("GET", "bookings", user=student)  # fills the student's cached list
    assert {b["status"] for b in cached.body["data"]} == {"pending_payment", "confirmed"}

    await tick()

    statuses = dict(await db.fetch("SELECT id, status FROM bookings WHERE student_id = $1", student.id))
    assert statuses == {stale: "expired", fresh: "pending_payment", paid: "confirmed"}
    keys = {r["key"] for r in await db.fetch("SELECT key FROM idempotency_keys WHERE user_id = $1", student.id)}
    assert old_key == "old" and keys == {"recent"}
    after = await api.call("GET", "bookings", user=student)
    assert {b["id"]: b["status"] for b in after.body["data"]}[str(stale)] == "expired"  # not the cached list

    await db.execute("UPDATE bookings SET hold_expires_at = now() - interval '1 second' WHERE id = $1", fresh)
    await tick()
    assert await db.fetchval("SELECT status FROM bookings WHERE id = $1", fresh) == "expired"
