"""Unpaid, failed and late payments: the hold's durable timer on the virtual clock, PaymentFailed,
and refunds of payments that succeed after their booking expired. Each test asserts the final rows."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from payments_helpers import PRICE, Flow


async def expire_hold(flow: Flow, booking_id: object) -> None:
    """Move virtual time to 1 s before the hold's end (still pending), then to its end."""
    rows = await flow.rows(booking_id)  # type: ignore[arg-type]
    hold = rows.booking["hold_expires_at"]
    await flow.set_clock(hold - timedelta(seconds=1))
    await asyncio.sleep(0.3)  # give a wrongly early timer the chance to fire
    assert (await flow.rows(booking_id)).booking["status"] == "pending_payment"  # type: ignore[arg-type]
    await flow.set_clock(hold)


async def test_an_unpaid_razorpay_booking_expires_when_the_hold_ends(flow: Flow) -> None:
    booking_id, _, checkout = await flow.checkout("INR")
    await flow.waiting_for_payment(booking_id)

    await expire_hold(flow, booking_id)

    final = await flow.finished(booking_id)
    assert final["output"] == {"booking_status": "expired", "payment_status": "failed", "reason": "hold_expired"}
    rows = await flow.settled(booking_id, "expired", "failed")
    assert rows.refund is None
    # Razorpay orders cannot be cancelled: the order stays unpaid at the provider.
    assert flow.razorpay.orders[checkout["order_id"]]["status"] == "created"


async def test_an_unpaid_stripe_booking_expires_and_its_intent_is_cancelled(flow: Flow) -> None:
    booking_id, _, checkout = await flow.checkout("USD")
    await flow.waiting_for_payment(booking_id)

    await expire_hold(flow, booking_id)

    await flow.finished(booking_id)
    rows = await flow.settled(booking_id, "expired", "failed")
    assert rows.refund is None
    assert flow.stripe.payment_intents[checkout["order_id"]]["status"] == "canceled"


async def test_the_slot_is_free_again_after_expiry(flow: Flow) -> None:
    booking_id, student, _ = await flow.checkout("INR")
    await flow.waiting_for_payment(booking_id)
    await expire_hold(flow, booking_id)
    await flow.settled(booking_id, "expired", "failed")
    booking = (await flow.rows(booking_id)).booking

    # The exclusion constraints only count pending_payment and confirmed bookings.
    again = await flow.db.fetchval(
        "INSERT INTO bookings (student_id, mentor_id, scheduled_at, ends_at, price_minor, currency, commission_bps,"
        " policy) SELECT student_id, mentor_id, scheduled_at, ends_at, price_minor, currency, commission_bps, policy"
        " FROM bookings WHERE id = $1 RETURNING id",
        booking_id,
    )
    assert again is not None and booking["student_id"] == student.id


async def test_a_failed_razorpay_payment_expires_the_booking(flow: Flow) -> None:
    booking_id, _, checkout = await flow.checkout("INR")
    await flow.waiting_for_payment(booking_id)

    await asyncio.to_thread(flow.razorpay.pay, checkout["order_id"], "failed")

    final = await flow.finished(booking_id)
    assert final["output"]["reason"] == "payment_failed"
    rows = await flow.settled(booking_id, "expired", "failed")
    assert rows.refund is None


async def test_a_failed_stripe_payment_expires_the_booking_and_cancels_the_intent(flow: Flow) -> None:
    booking_id, _, checkout = await flow.checkout("EUR")
    await flow.waiting_for_payment(booking_id)

    await asyncio.to_thread(flow.stripe.fail, checkout["order_id"])

    final = await flow.finished(booking_id)
    assert final["output"]["reason"] == "payment_failed"
    rows = await flow.settled(booking_id, "expired", "failed")
    assert rows.refund is None
    assert flow.stripe.payment_intents[checkout["order_id"]]["status"] == "canceled"


async def test_a_razorpay_payment_captured_after_expiry_is_refunded_in_full(flow: Flow) -> None:
    booking_id, _, checkout = await flow.checkout("INR")
    await flow.waiting_for_payment(booking_id)
    await expire_hold(flow, booking_id)
    await flow.finished(booking_id)
    await flow.settled(booking_id, "expired", "failed")

    paid = await asyncio.to_thread(flow.razorpay.pay, checkout["order_id"], "captured")
    await asyncio.to_thread(flow.razorpay.wait_for_webhooks)  # refund.processed follows the refund call

    rows = await flow.settled(booking_id, "expired", "refunded")
    assert rows.refund is not None
    assert (rows.refund["amount_minor"], rows.refund["reason"], rows.refund["status"]) == (
        PRICE["INR"],
        "late_payment",
        "succeeded",
    )
    provider_refunds = [r for r in flow.razorpay.refunds.values() if r["payment_id"] == paid.razorpay_payment_id]
    assert [r["id"] for r in provider_refunds] == [rows.refund["provider_refund_id"]]
    assert provider_refunds[0]["amount"] == PRICE["INR"]


async def test_a_razorpay_payment_authorised_days_after_it_failed_is_refunded(flow: Flow) -> None:
    booking_id, _, checkout = await flow.checkout("INR")
    await flow.waiting_for_payment(booking_id)
    failed = await asyncio.to_thread(flow.razorpay.pay, checkout["order_id"], "failed")
    await flow.finished(booking_id)
    await flow.settled(booking_id, "expired", "failed")
    await flow.advance(timedelta(days=2))

    await asyncio.to_thread(flow.razorpay.authorize_late, failed.razorpay_payment_id)
    await asyncio.to_thread(flow.razorpay.wait_for_webhooks)

    rows = await flow.settled(booking_id, "expired", "refunded")
    assert rows.refund is not None and rows.refund["reason"] == "late_payment"
    assert rows.payment is not None and rows.payment["provider_payment_id"] == failed.razorpay_payment_id
    assert await flow.refund_count(booking_id) == 1


async def test_a_stripe_payment_that_succeeds_after_expiry_is_refunded(flow: Flow) -> None:
    booking_id, _, checkout = await flow.checkout("USD")
    await flow.waiting_for_payment(booking_id)
    # Stripe is unreachable when the hold ends, so the intent cannot be cancelled in time: the
    # payment is not failed, it stays for reconciliation.
    flow.stripe.faults.fail_next("POST /v1/payment_intents/{id}/cancel", 1000, status=503)
    await expire_hold(flow, booking_id)
    await flow.finished(booking_id)
    await flow.settled(booking_id, "expired", "created")

    await asyncio.to_thread(flow.stripe.succeed, checkout["order_id"])
    await asyncio.to_thread(flow.stripe.wait_for_webhooks)

    rows = await flow.settled(booking_id, "expired", "refunded")
    assert rows.refund is not None
    assert (rows.refund["amount_minor"], rows.refund["reason"]) == (PRICE["USD"], "late_payment")
    refunds = [r for r in flow.stripe.refunds.values() if r["payment_intent"] == checkout["order_id"]]
    assert len(refunds) == 1 and refunds[0]["id"] == rows.refund["provider_refund_id"]
