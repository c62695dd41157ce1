"""Money taken for a booking the payment never confirmed: a cancellation in between refunds it in
full, and a lost PaymentConfirmed event is raised again by reconciliation."""

from __future__ import annotations

import asyncio
import uuid

from payments_helpers import PRICE, Flow


async def _paid_but_not_confirmed(flow: Flow, booking_id: uuid.UUID, order_id: str) -> None:
    """What apply_payment_update commits before the PaymentConfirmed event reaches the orchestration."""
    flow.stripe.set_webhook_url(None)
    await asyncio.to_thread(flow.stripe.succeed, order_id)
    await flow.db.execute(
        "UPDATE payments SET status = 'succeeded', succeeded_at = now() - interval '1 second' WHERE booking_id = $1",
        booking_id,
    )


async def test_a_cancellation_after_the_capture_but_before_the_confirmation_refunds_in_full(flow: Flow) -> None:
    booking_id, student, checkout = await flow.checkout("USD")
    await flow.waiting_for_payment(booking_id)
    await _paid_but_not_confirmed(flow, booking_id, checkout["order_id"])

    reply = await flow.call("POST", f"bookings/{booking_id}/cancel", {"reason": "changed my mind"}, user=student)
    assert reply.status == 200, reply.body

    rows = await flow.settled(booking_id, "cancelled", "refunded")
    assert rows.booking["refund_due_minor"] == 0
    assert rows.refund is not None
    assert (rows.refund["reason"], rows.refund["amount_minor"], rows.refund["status"]) == (
        "unconfirmed",
        PRICE["USD"],
        "succeeded",
    )


async def test_reconciliation_refunds_an_unconfirmed_cancelled_booking_whose_refund_was_never_started(
    flow: Flow,
) -> None:
    booking_id, student, checkout = await flow.checkout("USD")
    await flow.waiting_for_payment(booking_id)
    await _paid_but_not_confirmed(flow, booking_id, checkout["order_id"])
    # The cancellation committed, the refund after it never ran (a crash).
    await flow.db.execute(
        "UPDATE bookings SET status = 'cancelled', cancelled_at = now(), cancelled_by = $2,"
        " cancelled_by_role = 'student', refund_due_minor = 0 WHERE id = $1",
        booking_id,
        student.id,
    )

    await flow.reconcile()

    rows = await flow.settled(booking_id, "cancelled", "refunded")
    assert rows.refund is not None
    assert (rows.refund["reason"], rows.refund["amount_minor"]) == ("unconfirmed", PRICE["USD"])


async def test_reconciliation_raises_a_lost_payment_confirmation_again(flow: Flow) -> None:
    booking_id, _, checkout = await flow.checkout("USD")
    await flow.waiting_for_payment(booking_id)
    await _paid_but_not_confirmed(flow, booking_id, checkout["order_id"])

    await flow.reconcile()

    final = await flow.finished(booking_id)
    assert final["output"]["booking_status"] == "confirmed"
    rows = await flow.settled(booking_id, "confirmed", "succeeded")
    assert rows.refund is None
