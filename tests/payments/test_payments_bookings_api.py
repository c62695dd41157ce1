"""The payment flow through the bookings routes: createBooking starts it and answers with the
checkout; cancelBooking and a no-show refund what the booking's policy snapshot grants, at once,
through the provider, never twice."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from api_support import User
from payments_helpers import PRICE, Flow


def slot(days_ahead: int, hour: int) -> str:
    day = datetime.now(UTC).date() + timedelta(days=days_ahead)
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC).isoformat()


async def create(flow: Flow, student: User, mentor: User, days_ahead: int = 3, headers: Any = None) -> Any:
    body = {"mentor_id": str(mentor.id), "start": slot(days_ahead, 10), "length_minutes": 60}
    return await flow.call("POST", "bookings", body, user=student, headers=headers)


async def paid(flow: Flow, currency: str = "INR") -> tuple[uuid.UUID, User, User, dict[str, Any]]:
    """A booking made through createBooking and paid: (id, student, mentor, checkout)."""
    student, mentor = await flow.user("student"), await flow.bookable_mentor(currency)
    created = await create(flow, student, mentor)
    assert created.status == 201, created.body
    booking_id, checkout = uuid.UUID(created.body["id"]), created.body["payment"]
    await flow.waiting_for_payment(booking_id)
    if checkout["provider"] == "razorpay":
        await asyncio.to_thread(flow.razorpay.pay, checkout["order_id"], "captured")
    else:
        await asyncio.to_thread(flow.stripe.succeed, checkout["order_id"])
    await flow.finished(booking_id)
    await flow.settled(booking_id, "confirmed", "succeeded")
    return booking_id, student, mentor, checkout


async def test_create_booking_starts_the_flow_and_answers_with_the_checkout(flow: Flow) -> None:
    student, mentor = await flow.user("student"), await flow.bookable_mentor("INR")
    key = {"Idempotency-Key": uuid.uuid4().hex}

    created = await create(flow, student, mentor, headers=key)
    replayed = await create(flow, student, mentor, headers=key)

    assert created.status == 201, created.body
    checkout = created.body["payment"]
    assert checkout["provider"] == "razorpay" and checkout["order_id"].startswith("order_")
    assert (checkout["amount_minor"], checkout["currency"]) == (PRICE["INR"], "INR")
    assert checkout["key_id"] == flow.razorpay.key_id
    assert (replayed.status, replayed.body["payment"]["order_id"]) == (201, checkout["order_id"])
    booking_id = uuid.UUID(created.body["id"])
    status = await flow.waiting_for_payment(booking_id)
    assert status["runtimeStatus"] == "Running"
    await asyncio.to_thread(flow.razorpay.pay, checkout["order_id"], "captured")
    assert (await flow.finished(booking_id))["output"]["booking_status"] == "confirmed"
    rows = await flow.settled(booking_id, "confirmed", "succeeded")
    assert rows.refund is None
    assert len([o for o in flow.razorpay.orders.values() if o["receipt"] == str(booking_id)]) == 1


CANCELLATIONS = [
    # (currency, who cancels, hours before the start, refund due as a share of the price, final payment)
    ("INR", "mentor", 72, 1.0, "refunded"),
    ("USD", "mentor", 72, 1.0, "refunded"),
    ("INR", "student", 72, 1.0, "refunded"),
    ("EUR", "student", 72, 1.0, "refunded"),
    ("INR", "student", 2, 0.0, "succeeded"),
]


@pytest.mark.parametrize(("currency", "who", "hours_before", "share", "final"), CANCELLATIONS)
async def test_cancelling_a_paid_booking_refunds_per_its_policy(
    flow: Flow, currency: str, who: str, hours_before: int, share: float, final: str
) -> None:
    booking_id, student, mentor, checkout = await paid(flow, currency)
    start = datetime.now(UTC) + timedelta(hours=hours_before)
    await flow.db.execute(
        "UPDATE bookings SET scheduled_at = $2::timestamptz, ends_at = $2::timestamptz + interval '1 hour'"
        " WHERE id = $1",
        booking_id,
        start,
    )

    reply = await flow.call(
        "POST",
        f"bookings/{booking_id}/cancel",
        {"reason": "plans changed"},
        user=mentor if who == "mentor" else student,
    )
    again = await flow.call("POST", f"bookings/{booking_id}/cancel", {"reason": "again"}, user=student)
    await flow.reconcile()  # finds nothing left to refund

    due = int(PRICE[currency] * share)
    assert reply.status == 200, reply.body
    assert again.status == 409
    rows = await flow.settled(booking_id, "cancelled", final)
    assert rows.booking["refund_due_minor"] == due
    if due == 0:
        assert rows.refund is None
        return
    assert rows.refund is not None
    assert (rows.refund["amount_minor"], rows.refund["reason"], rows.refund["status"]) == (
        due,
        "cancellation",
        "succeeded",
    )
    if checkout["provider"] == "razorpay":
        sent = [r for r in flow.razorpay.refunds.values() if r["payment_id"] == rows.payment["provider_payment_id"]]  # type: ignore[index]
    else:
        sent = [r for r in flow.stripe.refunds.values() if r["payment_intent"] == checkout["order_id"]]
    assert [r["id"] for r in sent] == [rows.refund["provider_refund_id"]]


async def test_a_mentor_no_show_refunds_in_full(flow: Flow) -> None:
    booking_id, _, _, _ = await paid(flow, "USD")
    admin = await flow.user("admin")

    reply = await flow.call(
        "PATCH", f"bookings/{booking_id}/status", {"status": "no_show", "no_show_party": "mentor"}, user=admin
    )

    assert reply.status == 200, reply.body
    rows = await flow.settled(booking_id, "no_show", "refunded")
    assert rows.refund is not None
    assert (rows.refund["amount_minor"], rows.refund["reason"]) == (PRICE["USD"], "no_show")


async def test_cancelling_before_paying_refunds_nothing_and_a_late_payment_in_full(flow: Flow) -> None:
    student, mentor = await flow.user("student"), await flow.bookable_mentor("INR")
    created = await create(flow, student, mentor)
    booking_id, checkout = uuid.UUID(created.body["id"]), created.body["payment"]
    await flow.waiting_for_payment(booking_id)

    reply = await flow.call("POST", f"bookings/{booking_id}/cancel", {"reason": "changed my mind"}, user=student)
    assert reply.status == 200
    assert (await flow.rows(booking_id)).refund is None
    await asyncio.to_thread(flow.razorpay.pay, checkout["order_id"], "captured")  # paid in another tab
    await asyncio.to_thread(flow.razorpay.wait_for_webhooks)

    rows = await flow.settled(booking_id, "cancelled", "refunded")
    assert rows.refund is not None
    assert (rows.refund["amount_minor"], rows.refund["reason"]) == (PRICE["INR"], "late_payment")
