"""A devhost restart in the middle of payment flows: the orchestrations (PostgreSQL-backed Durable
store) wait on across the restart; one booking is paid afterwards, the other's hold runs out.

This module runs its own hosts (never beside the module host of the other payment tests: the Durable
SDK's client session belongs to one event loop at a time)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg
import pytest
from payments_helpers import Flow, aim_webhooks, reset, serve

from devhost.clock import VirtualClock
from devhost.fakes.razorpay import FakeRazorpay
from devhost.fakes.stripe import FakeStripe
from devhost.testing import HostThread
from shared.resources import close_resources


@pytest.fixture
async def parts(
    payments_env: dict[str, str], fakes: tuple[FakeRazorpay, FakeStripe], database_url: str
) -> AsyncIterator[tuple[aiohttp.ClientSession, asyncpg.Connection]]:
    conn = await asyncpg.connect(database_url)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        yield http, conn
    await conn.close()


def stop(host: HostThread) -> None:
    host.call(close_resources())
    host.stop()


async def test_payment_flows_survive_a_devhost_restart(
    parts: tuple[aiohttp.ClientSession, asyncpg.Connection],
    fakes: tuple[FakeRazorpay, FakeStripe],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DURABLE_TASK_HUB", f"restart{uuid.uuid4().hex[:8]}")
    http, conn = parts
    razorpay, stripe = fakes
    clock = VirtualClock(start=datetime.now(UTC))

    first = await asyncio.to_thread(serve, clock)
    try:
        reset(razorpay, stripe, first)
        before = Flow(first, http, conn, razorpay, stripe)
        paid_later, _, checkout = await before.checkout("INR")
        expiring, _, _ = await before.checkout("USD")
        for booking_id in (paid_later, expiring):
            await before.waiting_for_payment(booking_id)
        await before.advance(timedelta(minutes=5))
    finally:
        await asyncio.to_thread(stop, first)

    # Virtual time continues from where the first host stopped (its sleepers died with its loop).
    second = await asyncio.to_thread(serve, VirtualClock(start=clock.now()))
    try:
        aim_webhooks(razorpay, stripe, second)
        after = dataclasses.replace(before, host=second)
        for booking_id in (paid_later, expiring):
            status = await after.waiting_for_payment(booking_id)
            assert status["runtimeStatus"] == "Running"

        await asyncio.to_thread(razorpay.pay, checkout["order_id"], "captured")
        assert (await after.finished(paid_later))["output"]["booking_status"] == "confirmed"
        hold = (await after.rows(expiring)).booking["hold_expires_at"]
        await after.set_clock(hold)
        assert (await after.finished(expiring))["output"]["booking_status"] == "expired"

        paid = await after.settled(paid_later, "confirmed", "succeeded")
        assert paid.refund is None
        unpaid = await after.settled(expiring, "expired", "failed")
        assert unpaid.refund is None
        kinds = [e["EventType"] for e in await asyncio.to_thread(after.durable.history, str(paid_later))]
        assert kinds.count("ExecutionStarted") == 1 and kinds.count("TaskScheduled") == 2
    finally:
        await asyncio.to_thread(stop, second)
