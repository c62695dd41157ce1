"""The app on a devhost (Durable engine, timers, virtual clock) wired to fake Razorpay and Stripe.

The fakes and the host live for the module; each test makes its own users and bookings, so tests
never share a booking. Bookings are inserted directly (pending_payment, holding their slot until
`hold_expires_at` on the host's virtual clock), as the createBooking route would leave them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from payments_helpers import Flow, reset, serve

from devhost.clock import VirtualClock
from devhost.fakes.razorpay import FakeRazorpay
from devhost.fakes.stripe import FakeStripe
from devhost.testing import HostThread
from shared.resources import close_resources

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def app_host(payments_env: dict[str, str], fakes: tuple[FakeRazorpay, FakeStripe]) -> Iterator[HostThread]:
    with serve(VirtualClock(start=datetime.now(UTC))) as host:
        yield host
        host.call(close_resources())


@pytest.fixture
async def flow(app_host: HostThread, fakes: tuple[FakeRazorpay, FakeStripe], database_url: str) -> AsyncIterator[Flow]:
    razorpay, stripe = fakes
    reset(razorpay, stripe, app_host)
    conn = await asyncpg.connect(database_url)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        yield Flow(app_host, http, conn, razorpay, stripe)
    await conn.close()
    errors = [*razorpay.internal_errors, *stripe.internal_errors]
    assert not errors, f"a fake provider itself failed (answered 500): {errors!r}"
