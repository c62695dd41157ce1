"""A flood of identical deliveries of one webhook event, more than the database pool holds, while the
first delivery is still processing: every delivery is answered 2xx, the event is processed once,
and the rest of the API keeps its connections.

The module's host has a 3-connection pool (DB_POOL_MAX), so 3 x pool-size deliveries and a few
unrelated reads reach the pool's limit deterministically. The test holds the payment row's lock
from its own connection: that is the first delivery "still processing" (a slow provider call, a
concurrent reconciliation), for exactly as long as the test needs.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from api_support import Reply
from payments_helpers import Flow, serve

from devhost.clock import VirtualClock
from devhost.fakes.razorpay import FakeRazorpay
from devhost.fakes.stripe import FakeStripe, signature_header
from devhost.testing import HostThread
from shared.config import get_settings
from shared.resources import close_resources

POOL_SIZE = 3
FLOOD = 3 * POOL_SIZE
SMALL_POOL = {
    "DB_POOL_MAX": str(POOL_SIZE),
    "DB_POOL_MIN": "1",
    # A duplicate waits this long for the first delivery to finish: longer than any test holds it.
    "WEBHOOK_DUPLICATE_WAIT_SECONDS": "30",
}


@pytest.fixture(scope="module")
def app_host(payments_env: dict[str, str], fakes: tuple[FakeRazorpay, FakeStripe]) -> Iterator[HostThread]:
    saved = {name: os.environ.get(name) for name in SMALL_POOL}
    os.environ.update(SMALL_POOL)
    get_settings.cache_clear()
    try:
        with serve(VirtualClock(start=datetime.now(UTC))) as host:
            yield host
            host.call(close_resources())
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()


def signed_delivery(flow: Flow, provider: str, order_id: str) -> tuple[str, bytes, dict[str, str], str]:
    """(route, body, headers, event id) of a signed "payment succeeded" event for the order."""
    event_id = f"evt_flood_{uuid.uuid4().hex[:12]}"
    if provider == "razorpay":
        entity = {"id": f"pay_{event_id}", "order_id": order_id, "status": "captured"}
        body = json.dumps({"event": "payment.captured", "payload": {"payment": {"entity": entity}}}).encode()
        signature = hmac.new(flow.razorpay.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {"X-Razorpay-Signature": signature, "X-Razorpay-Event-Id": event_id}
        return "payments/razorpay/webhook", body, headers, event_id
    intent = {"id": order_id, "object": "payment_intent", "status": "succeeded"}
    body = json.dumps({"id": event_id, "type": "payment_intent.succeeded", "data": {"object": intent}}).encode()
    headers = {"Stripe-Signature": signature_header(body, flow.stripe.webhook_secret, int(time.time()))}
    return "payments/stripe/webhook", body, headers, event_id


async def blocked_by(flow: Flow, blocker: asyncpg.Connection) -> int:
    """How many of the app's statements wait for a lock the blocker holds."""
    return int(
        await flow.db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", blocker.get_server_pid()
        )
    )


@pytest.mark.parametrize(("provider", "currency"), [("razorpay", "INR"), ("stripe", "USD")])
async def test_a_flood_of_identical_deliveries_is_processed_once_and_starves_no_other_request(
    flow: Flow, database_url: str, provider: str, currency: str
) -> None:
    flow.razorpay.set_webhook_url(None)
    flow.stripe.set_webhook_url(None)
    booking_id, _, checkout = await flow.checkout(currency)
    await flow.waiting_for_payment(booking_id)
    mentor_id = (await flow.rows(booking_id)).booking["mentor_id"]
    route, body, headers, event_id = signed_delivery(flow, provider, checkout["order_id"])

    blocker = await asyncpg.connect(database_url)
    lock = blocker.transaction()
    await lock.start()
    try:
        await blocker.execute("SELECT 1 FROM payments WHERE booking_id = $1 FOR UPDATE", booking_id)
        flood = [asyncio.create_task(flow.call("POST", route, raw=body, headers=headers)) for _ in range(FLOOD)]
        # The first delivery is processing (waiting for the payment row) or something already answered.
        await flow.eventually(lambda: _processing_or_answered(flow, blocker, flood))
        others: list[Reply] = await asyncio.gather(
            *(flow.call("GET", "health") for _ in range(POOL_SIZE)),
            *(flow.call("GET", f"mentors/{mentor_id}") for _ in range(POOL_SIZE)),
        )
    finally:
        await lock.rollback()
        await blocker.close()
    replies = await asyncio.gather(*flood)

    assert [r.status for r in replies] == [200] * FLOOD, [(r.status, r.body) for r in replies]
    assert sorted(r.body["duplicate"] for r in replies) == [False] + [True] * (FLOOD - 1)
    assert [r.status for r in others] == [200] * len(others), [r.body for r in others]
    assert all(r.body["checks"]["database"]["status"] == "ok" for r in others[:POOL_SIZE])
    assert (await flow.finished(booking_id))["output"]["booking_status"] == "confirmed"
    history = await asyncio.to_thread(flow.durable.history, str(booking_id))
    assert [e["EventType"] for e in history].count("EventRaised") == 1
    rows = await flow.db.fetch(
        "SELECT processed_at FROM webhook_events WHERE provider = $1 AND event_id = $2", provider, event_id
    )
    assert len(rows) == 1 and rows[0]["processed_at"] is not None
    assert (await flow.rows(booking_id)).payment["status"] == "succeeded"  # type: ignore[index]


async def _processing_or_answered(flow: Flow, blocker: asyncpg.Connection, flood: list[asyncio.Task[Any]]) -> bool:
    return any(task.done() for task in flood) or await blocked_by(flow, blocker) > 0


async def test_when_the_first_delivery_dies_mid_processing_a_waiting_duplicate_processes_the_event(
    flow: Flow, database_url: str
) -> None:
    flow.razorpay.set_webhook_url(None)
    booking_id, _, checkout = await flow.checkout("INR")
    await flow.waiting_for_payment(booking_id)
    route, body, headers, event_id = signed_delivery(flow, "razorpay", checkout["order_id"])

    blocker = await asyncpg.connect(database_url)
    lock = blocker.transaction()
    await lock.start()
    try:
        await blocker.execute("SELECT 1 FROM payments WHERE booking_id = $1 FOR UPDATE", booking_id)
        flood = [asyncio.create_task(flow.call("POST", route, raw=body, headers=headers)) for _ in range(4)]
        await flow.eventually(lambda: _processing_or_answered(flow, blocker, flood))
        # The first delivery's database connection dies while it processes (a failover, a killed backend).
        first = await flow.db.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", blocker.get_server_pid()
        )
        assert await flow.db.fetchval("SELECT pg_terminate_backend($1)", first)
        # A duplicate that was waiting takes the event over (and now waits for the payment row itself).
        await flow.eventually(lambda: _taken_over(flow, blocker, first))
    finally:
        await lock.rollback()
        await blocker.close()
    replies = await asyncio.gather(*flood)

    failed = [r for r in replies if r.status >= 500]
    assert len(failed) == 1 and failed[0].body["code"] == "internal_error", [(r.status, r.body) for r in replies]
    answered = [r for r in replies if r.status == 200]
    assert sorted(r.body["duplicate"] for r in answered) == [False, True, True], [r.body for r in answered]
    assert (await flow.finished(booking_id))["output"]["booking_status"] == "confirmed"
    history = await asyncio.to_thread(flow.durable.history, str(booking_id))
    assert [e["EventType"] for e in history].count("EventRaised") == 1
    assert await flow.db.fetchval(
        "SELECT processed_at IS NOT NULL FROM webhook_events WHERE provider = 'razorpay' AND event_id = $1", event_id
    )


async def _taken_over(flow: Flow, blocker: asyncpg.Connection, first: int) -> bool:
    pids = await flow.db.fetch(
        "SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", blocker.get_server_pid()
    )
    return any(row["pid"] != first for row in pids)


async def claim_of_another_delivery(flow: Flow, provider: str, event_id: str, *, lease_left_s: float) -> None:
    """The event's row as a delivery elsewhere left it: claimed, not processed, its lease ending in
    `lease_left_s` (negative: it has run out, the delivery died)."""
    await flow.db.execute(
        """
        INSERT INTO webhook_events (provider, event_id, event_type, payload, claim_token, claimed_until)
        VALUES ($1, $2, 'payment.captured', '{}', $3, now() + make_interval(secs => $4))
        """,
        provider,
        event_id,
        uuid.uuid4(),
        lease_left_s,
    )


async def test_an_event_whose_claim_ran_out_unprocessed_is_processed_by_the_next_delivery(flow: Flow) -> None:
    flow.razorpay.set_webhook_url(None)
    booking_id, _, checkout = await flow.checkout("INR")
    await flow.waiting_for_payment(booking_id)
    route, body, headers, event_id = signed_delivery(flow, "razorpay", checkout["order_id"])
    await claim_of_another_delivery(flow, "razorpay", event_id, lease_left_s=-1)

    reply = await flow.call("POST", route, raw=body, headers=headers)

    assert (reply.status, reply.body) == (200, {"received": True, "duplicate": False}), reply.body
    assert (await flow.finished(booking_id))["output"]["booking_status"] == "confirmed"


@pytest.fixture
def short_duplicate_wait(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Duplicates wait 0.2 s for the first delivery in this test (the host shares this process's settings)."""
    monkeypatch.setenv("WEBHOOK_DUPLICATE_WAIT_SECONDS", "0.2")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


async def test_a_delivery_of_an_event_another_delivery_still_processes_is_answered_retry_later(
    flow: Flow, short_duplicate_wait: None
) -> None:
    flow.stripe.set_webhook_url(None)
    booking_id, _, checkout = await flow.checkout("USD")
    await flow.waiting_for_payment(booking_id)
    route, body, headers, event_id = signed_delivery(flow, "stripe", checkout["order_id"])
    await claim_of_another_delivery(flow, "stripe", event_id, lease_left_s=600)

    busy = await flow.call("POST", route, raw=body, headers=headers)

    # Not 2xx: the other delivery may still fail, and Stripe must then deliver the event again.
    assert (busy.status, busy.body["code"]) == (503, "event_in_progress"), busy.body
    assert busy.headers["Content-Type"].startswith("application/problem+json")
    assert int(busy.headers["Retry-After"]) > 0
    assert (await flow.rows(booking_id)).payment["status"] == "created"  # type: ignore[index]

    # The other delivery died: its lease runs out and Stripe's retry processes the event.
    await flow.db.execute(
        "UPDATE webhook_events SET claimed_until = now() WHERE provider = 'stripe' AND event_id = $1", event_id
    )
    retried = await flow.call("POST", route, raw=body, headers=headers)
    assert (retried.status, retried.body["duplicate"]) == (200, False), retried.body
    assert (await flow.finished(booking_id))["output"]["booking_status"] == "confirmed"
