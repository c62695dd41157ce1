"""A Stripe intent the hold's end could not cancel is never forgotten: the payment is failed only
once Stripe confirmed the cancel, reconciliation retries the cancel, and refunds an intent that was
paid in the meantime even when its webhook was lost."""

from __future__ import annotations

import asyncio

from payments_helpers import PRICE, Flow

CANCEL = "POST /v1/payment_intents/{id}/cancel"
# Until cleared: the reconciliation timer may also fire when the virtual clock jumps over the hold.
ALWAYS = 1000


async def test_an_intent_paid_after_a_failed_cancel_with_its_webhook_lost_is_refunded(flow: Flow) -> None:
    booking_id, _, checkout = await flow.checkout("USD")
    await flow.waiting_for_payment(booking_id)
    flow.stripe.faults.fail_next(CANCEL, ALWAYS, status=503)
    await flow.set_clock((await flow.rows(booking_id)).booking["hold_expires_at"])
    await flow.finished(booking_id)
    await flow.settled(booking_id, "expired", "created")
    flow.stripe.set_webhook_url(None)
    await asyncio.to_thread(flow.stripe.succeed, checkout["order_id"])

    await flow.reconcile()

    rows = await flow.settled(booking_id, "expired", "refunded")
    assert rows.refund is not None
    assert (rows.refund["reason"], rows.refund["amount_minor"]) == ("late_payment", PRICE["USD"])


async def test_reconciliation_retries_the_cancel_and_fails_the_payment_once_stripe_confirms(flow: Flow) -> None:
    booking_id, _, checkout = await flow.checkout("USD")
    await flow.waiting_for_payment(booking_id)
    flow.stripe.faults.fail_next(CANCEL, ALWAYS, status=503)
    await flow.set_clock((await flow.rows(booking_id)).booking["hold_expires_at"])
    await flow.finished(booking_id)
    await flow.settled(booking_id, "expired", "created")

    await flow.reconcile()  # Stripe still fails the cancel
    rows = await flow.rows(booking_id)
    assert rows.payment is not None and (rows.payment["status"], rows.payment["closed_at"]) == ("created", None)
    assert flow.stripe.payment_intents[checkout["order_id"]]["status"] != "canceled"

    flow.stripe.faults.clear()
    await flow.reconcile()
    rows = await flow.settled(booking_id, "expired", "failed")
    assert rows.payment is not None and rows.payment["closed_at"] is not None
    assert flow.stripe.payment_intents[checkout["order_id"]]["status"] == "canceled"


async def test_a_declined_intent_whose_cancel_failed_is_still_asked_about(flow: Flow) -> None:
    """A declined (failed) intent can still be paid with another card until it is cancelled."""
    booking_id, _, checkout = await flow.checkout("USD")
    await flow.waiting_for_payment(booking_id)
    flow.stripe.faults.fail_next(CANCEL, ALWAYS, status=503)
    await asyncio.to_thread(flow.stripe.fail, checkout["order_id"])
    await flow.finished(booking_id)
    rows = await flow.settled(booking_id, "expired", "failed")
    assert rows.payment is not None and rows.payment["closed_at"] is None
    flow.stripe.set_webhook_url(None)
    await asyncio.to_thread(flow.stripe.succeed, checkout["order_id"])

    await flow.reconcile()

    rows = await flow.settled(booking_id, "expired", "refunded")
    assert rows.refund is not None and rows.refund["reason"] == "late_payment"
