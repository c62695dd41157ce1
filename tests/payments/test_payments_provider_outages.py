"""Provider 5xx answers and timeouts while the order is created: the activity is retried durably
(RetryOptions, back-off on the virtual clock) with the same idempotency key, so no second order is
ever made; when the retries run out, the booking expires cleanly."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from payments_helpers import Flow

BACKOFF = timedelta(seconds=5)


async def test_razorpay_5xx_answers_are_retried_and_one_order_is_made(flow: Flow) -> None:
    flow.razorpay.faults.fail_next("POST /v1/orders", 2, status=500)
    booking_id, student = await flow.booking("INR")
    calls_before = flow.razorpay.faults.calls["POST /v1/orders"]

    start = asyncio.create_task(flow.start_payment(booking_id, student))
    for n in (1, 2):
        await flow.timers_created(booking_id, n)
        await flow.advance(BACKOFF)
    reply = await start
    await flow.waiting_for_payment(booking_id)

    rows = await flow.rows(booking_id)
    assert rows.payment is not None and rows.booking["status"] == "pending_payment"
    if reply.status == 200:
        assert reply.body["checkout"]["order_id"] == rows.payment["provider_id"]
    assert flow.razorpay.faults.calls["POST /v1/orders"] - calls_before == 3
    assert [o["id"] for o in flow.razorpay.orders.values() if o["receipt"] == str(booking_id)] == [
        rows.payment["provider_id"]
    ]
    history = await asyncio.to_thread(flow.durable.history, str(booking_id))
    assert [e["EventType"] for e in history].count("TaskFailed") == 2


async def test_a_stripe_timeout_is_retried_with_the_same_idempotency_key(flow: Flow) -> None:
    # The first create outlives the client's timeout (1 s) but happens at Stripe all the same.
    flow.stripe.faults.hang_next("POST /v1/payment_intents", 1, seconds=2)
    booking_id, student = await flow.booking("USD")

    start = asyncio.create_task(flow.start_payment(booking_id, student))
    await flow.timers_created(booking_id, 1)
    await asyncio.to_thread(flow.stripe.wait_for_requests)  # the hung create has finished at Stripe
    await flow.advance(BACKOFF)
    await start
    await flow.waiting_for_payment(booking_id)

    rows = await flow.rows(booking_id)
    intents = [pi for pi in flow.stripe.payment_intents.values() if pi["metadata"].get("booking_id") == str(booking_id)]
    assert [pi["id"] for pi in intents] == [rows.payment["provider_id"] if rows.payment else None]
    keys = {r.headers.get("Idempotency-Key") for r in flow.stripe.requests if str(booking_id) in r.body.decode()}
    assert keys == {f"booking-{booking_id}-order"}


async def test_when_retries_run_out_the_booking_expires_cleanly(flow: Flow) -> None:
    flow.stripe.faults.fail_next("POST /v1/payment_intents", 10, status=503)
    booking_id, student = await flow.booking("EUR")

    start = asyncio.create_task(flow.start_payment(booking_id, student))
    for n in (1, 2, 3):
        await flow.timers_created(booking_id, n)
        await flow.advance(BACKOFF)
    await start

    final = await flow.finished(booking_id)
    assert final["output"] == {"booking_status": "expired", "payment_status": None, "reason": "provider_unavailable"}
    rows = await flow.rows(booking_id)
    assert rows.booking["status"] == "expired" and rows.payment is None and rows.refund is None
    assert not [
        pi for pi in flow.stripe.payment_intents.values() if pi["metadata"].get("booking_id") == str(booking_id)
    ]
    reply = await flow.call("GET", f"bookings/{booking_id}/payment", user=student)
    assert (reply.status, reply.body["booking_status"], reply.body["checkout"]) == (200, "expired", None)
