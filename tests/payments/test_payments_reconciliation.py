"""Reconciliation: the timer compares local payments with the provider and settles what webhooks
missed (lost deliveries, late captures) and refunds the provider never accepted."""

from __future__ import annotations

import asyncio

import pytest
from payments_helpers import PRICE, Flow


@pytest.mark.parametrize("currency", ["INR", "USD"])
async def test_a_payment_whose_webhooks_were_lost_confirms_the_booking(flow: Flow, currency: str) -> None:
    booking_id, _, checkout = await flow.checkout(currency)
    await flow.waiting_for_payment(booking_id)
    flow.razorpay.set_webhook_url(None)
    flow.stripe.set_webhook_url(None)
    if checkout["provider"] == "razorpay":
        await asyncio.to_thread(flow.razorpay.pay, checkout["order_id"], "captured")
    else:
        await asyncio.to_thread(flow.stripe.succeed, checkout["order_id"])
    assert (await flow.rows(booking_id)).booking["status"] == "pending_payment"

    await flow.reconcile()

    final = await flow.finished(booking_id)
    assert final["output"]["booking_status"] == "confirmed"
    rows = await flow.settled(booking_id, "confirmed", "succeeded")
    assert rows.refund is None


async def test_a_late_capture_whose_webhooks_were_lost_is_refunded(flow: Flow) -> None:
    booking_id, _, checkout = await flow.checkout("INR")
    await flow.waiting_for_payment(booking_id)
    await flow.set_clock((await flow.rows(booking_id)).booking["hold_expires_at"])
    await flow.finished(booking_id)
    await flow.settled(booking_id, "expired", "failed")
    flow.razorpay.set_webhook_url(None)
    await asyncio.to_thread(flow.razorpay.pay, checkout["order_id"], "captured")

    await flow.reconcile()

    rows = await flow.settled(booking_id, "expired", "refunded")
    assert rows.refund is not None
    assert (rows.refund["reason"], rows.refund["amount_minor"], rows.refund["status"]) == (
        "late_payment",
        PRICE["INR"],
        "succeeded",
    )


async def test_a_refund_the_provider_did_not_accept_is_sent_again_with_the_same_key(flow: Flow) -> None:
    booking_id, _, checkout = await flow.checkout("USD")
    await flow.waiting_for_payment(booking_id)
    await asyncio.to_thread(flow.stripe.succeed, checkout["order_id"])
    await flow.finished(booking_id)
    await flow.settled(booking_id, "confirmed", "succeeded")
    await flow.db.execute(
        "UPDATE bookings SET status = 'cancelled', cancelled_at = now(), cancelled_by = mentor_id,"
        " cancelled_by_role = 'mentor',"
        " refund_due_minor = price_minor WHERE id = $1",
        booking_id,
    )
    flow.stripe.faults.fail_next("POST /v1/refunds", 1, status=500)

    await flow.reconcile()
    rows = await flow.rows(booking_id)
    assert rows.refund is not None and rows.refund["status"] == "requested"
    assert rows.payment is not None and rows.payment["status"] == "refund_pending"

    await flow.reconcile()

    rows = await flow.settled(booking_id, "cancelled", "refunded")
    assert rows.refund is not None and rows.refund["status"] == "succeeded"
    keys = [
        r.headers.get("Idempotency-Key")
        for r in flow.stripe.requests
        if r.path == "/v1/refunds" and checkout["order_id"] in r.body.decode()
    ]
    assert keys == [rows.refund["idempotency_key"]] * 2
    assert len([r for r in flow.stripe.refunds.values() if r["payment_intent"] == checkout["order_id"]]) == 1
