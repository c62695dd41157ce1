"""Refunds on cancellation and no-show per the booking's refund_due_minor, through the provider's
refund API with an idempotency key, tracked to completion by webhook and never issued twice.

Bookings are cancelled as cancelBooking leaves them (status, who, when, refund_due_minor); the
payment side then settles the refund (here through the reconciliation timer, the path that covers
every cancellation even if the request that cancelled it died before refunding)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import asyncpg
import pytest
from payments_helpers import PRICE, Flow, Rows

from shared.payments.service import MAX_REFUND_ATTEMPTS


async def paid_booking(flow: Flow, currency: str) -> tuple[uuid.UUID, dict[str, Any]]:
    booking_id, _, checkout = await flow.checkout(currency)
    await flow.waiting_for_payment(booking_id)
    if checkout["provider"] == "razorpay":
        await asyncio.to_thread(flow.razorpay.pay, checkout["order_id"], "captured")
    else:
        await asyncio.to_thread(flow.stripe.succeed, checkout["order_id"])
    await flow.finished(booking_id)
    await flow.settled(booking_id, "confirmed", "succeeded")
    return booking_id, checkout


async def end_booking(flow: Flow, booking_id: uuid.UUID, how: str, refund_due: int) -> None:
    if how == "no_show":
        await flow.db.execute(
            "UPDATE bookings SET status = 'no_show', no_show_party = 'mentor', refund_due_minor = $2 WHERE id = $1",
            booking_id,
            refund_due,
        )
    else:
        await flow.db.execute(
            "UPDATE bookings SET status = 'cancelled', cancelled_at = now(), cancelled_by_role = $2,"
            " cancelled_by = CASE WHEN $2 = 'student' THEN student_id ELSE mentor_id END,"
            " refund_due_minor = $3 WHERE id = $1",
            booking_id,
            how,
            refund_due,
        )


def provider_refunds(flow: Flow, checkout: dict[str, Any], rows: Rows) -> list[dict[str, Any]]:
    if checkout["provider"] == "razorpay":
        assert rows.payment is not None
        return [r for r in flow.razorpay.refunds.values() if r["payment_id"] == rows.payment["provider_payment_id"]]
    return [r for r in flow.stripe.refunds.values() if r["payment_intent"] == checkout["order_id"]]


MATRIX = [
    # (currency, ended by, share of the price due, final payment status, refund reason)
    ("INR", "mentor", 1.0, "refunded", "cancellation"),
    ("USD", "mentor", 1.0, "refunded", "cancellation"),
    ("INR", "student", 1.0, "refunded", "cancellation"),
    ("EUR", "student", 0.5, "partially_refunded", "cancellation"),
    ("INR", "student", 0.0, "succeeded", None),
    ("USD", "no_show", 1.0, "refunded", "no_show"),
]


@pytest.mark.parametrize(("currency", "how", "share", "final", "reason"), MATRIX)
async def test_cancel_refund_matrix(
    flow: Flow, currency: str, how: str, share: float, final: str, reason: str | None
) -> None:
    booking_id, checkout = await paid_booking(flow, currency)
    due = int(PRICE[currency] * share)
    await end_booking(flow, booking_id, how, due)

    await flow.reconcile()
    await flow.reconcile()  # a second pass finds nothing more to refund
    await asyncio.to_thread(flow.razorpay.wait_for_webhooks)
    await asyncio.to_thread(flow.stripe.wait_for_webhooks)

    rows = await flow.settled(booking_id, "no_show" if how == "no_show" else "cancelled", final)
    sent = provider_refunds(flow, checkout, rows)
    if reason is None:
        assert rows.refund is None and sent == []
        return
    assert rows.refund is not None
    assert (rows.refund["amount_minor"], rows.refund["reason"], rows.refund["status"]) == (due, reason, "succeeded")
    assert rows.refund["idempotency_key"] == f"refund-{rows.payment['id'] if rows.payment else ''}"
    assert [r["id"] for r in sent] == [rows.refund["provider_refund_id"]]
    assert sent[0]["amount"] == due


async def test_a_pending_refund_completes_by_webhook_and_is_never_issued_twice(flow: Flow) -> None:
    flow.razorpay.refund_outcome = "pending"
    booking_id, checkout = await paid_booking(flow, "INR")
    await end_booking(flow, booking_id, "mentor", PRICE["INR"])

    await flow.reconcile()
    rows = await flow.settled(booking_id, "cancelled", "refund_pending")
    assert rows.refund is not None and rows.refund["status"] == "pending"

    await flow.reconcile()  # nothing new: the refund exists
    refund_id = rows.refund["provider_refund_id"]
    await asyncio.to_thread(flow.razorpay.settle_refund, refund_id, "processed")
    processed = [
        d for d in flow.razorpay.deliveries if d.event_type == "refund.processed" and refund_id.encode() in d.body
    ]
    await asyncio.to_thread(flow.razorpay.redeliver, processed[-1].event_id)  # a provider retry

    rows = await flow.settled(booking_id, "cancelled", "refunded")
    assert rows.refund is not None and rows.refund["status"] == "succeeded"
    assert len(provider_refunds(flow, checkout, rows)) == 1
    assert await flow.refund_count(booking_id) == 1


async def test_a_refund_the_provider_fails_is_tried_again_with_a_new_key(flow: Flow) -> None:
    flow.stripe.refund_outcome = "pending"
    booking_id, checkout = await paid_booking(flow, "USD")
    await end_booking(flow, booking_id, "mentor", PRICE["USD"])
    await flow.reconcile()
    rows = await flow.settled(booking_id, "cancelled", "refund_pending")
    assert rows.refund is not None
    first = rows.refund

    await asyncio.to_thread(flow.stripe.settle_refund, first["provider_refund_id"], "failed")
    await flow.eventually(lambda: _refund_status(flow, booking_id, "failed"))
    flow.stripe.refund_outcome = "succeeded"
    await flow.reconcile()

    rows = await flow.settled(booking_id, "cancelled", "refunded")
    assert rows.refund is not None and rows.payment is not None
    assert (rows.refund["attempt"], rows.refund["status"], rows.refund["amount_minor"]) == (
        2,
        "succeeded",
        PRICE["USD"],
    )
    assert rows.refund["idempotency_key"] == f"refund-{rows.payment['id']}-2" != first["idempotency_key"]
    sent = provider_refunds(flow, checkout, rows)
    assert sorted(r["status"] for r in sent) == ["failed", "succeeded"]
    await flow.reconcile()  # refunded: nothing more
    assert await flow.refund_count(booking_id) == 2


async def test_refund_attempts_are_bounded_and_running_out_is_logged_as_an_error(
    flow: Flow, caplog: pytest.LogCaptureFixture
) -> None:
    booking_id, _ = await paid_booking(flow, "USD")
    flow.stripe.faults.fail_next("POST /v1/refunds", 1000, status=400)
    await end_booking(flow, booking_id, "mentor", PRICE["USD"])

    with caplog.at_level(logging.ERROR, logger="shared.payments.service"):
        for _ in range(MAX_REFUND_ATTEMPTS + 2):
            await flow.reconcile()

    refunds = await flow.db.fetch(
        "SELECT r.attempt, r.status, r.idempotency_key FROM refunds r JOIN payments p ON p.id = r.payment_id"
        " WHERE p.booking_id = $1 ORDER BY r.attempt",
        booking_id,
    )
    assert [(r["attempt"], r["status"]) for r in refunds] == [(n, "failed") for n in range(1, MAX_REFUND_ATTEMPTS + 1)]
    assert len({r["idempotency_key"] for r in refunds}) == MAX_REFUND_ATTEMPTS
    rows = await flow.rows(booking_id)
    assert rows.payment is not None and rows.payment["status"] == "refund_pending"
    assert any("must be repaid by hand" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)


async def test_one_payment_never_has_two_live_refunds(flow: Flow) -> None:
    booking_id, _ = await paid_booking(flow, "USD")
    payment_id = (await flow.rows(booking_id)).payment["id"]  # type: ignore[index]
    insert = (
        "INSERT INTO refunds (payment_id, attempt, idempotency_key, amount_minor, reason)"
        " VALUES ($1, $2, $3, 1, 'cancellation')"
    )
    await flow.db.execute(insert, payment_id, 1, f"refund-{payment_id}")
    with pytest.raises(asyncpg.UniqueViolationError, match="refunds_one_live_per_payment"):
        await flow.db.execute(insert, payment_id, 2, f"refund-{payment_id}-2")
    await flow.db.execute("UPDATE refunds SET status = 'failed' WHERE payment_id = $1", payment_id)
    await flow.db.execute(insert, payment_id, 2, f"refund-{payment_id}-2")


async def _refund_status(flow: Flow, booking_id: uuid.UUID, status: str) -> bool:
    refund = (await flow.rows(booking_id)).refund
    return refund is not None and refund["status"] == status
