"""Paths proven end to end: createBooking's configured hold ends on the virtual clock, a student's
late cancellation through the cancel route refunds the policy's percent, a Razorpay authorisation
leaves the payment pending, a Razorpay refund is resent with the same X-Refund-Idempotency key, and
one provider object belongs to one payment."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from payments_helpers import PRICE, Flow

from shared.config import get_settings

REFUND_ROUTE = "POST /v1/payments/{id}/refund"


def slot(days_ahead: int, hour: int) -> str:
    day = datetime.now(UTC).date() + timedelta(days=days_ahead)
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC).isoformat()


@pytest.fixture
def hold_minutes(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """The platform's hold set to 7 minutes for this test (the host shares this process's settings)."""
    monkeypatch.setenv("BOOKING_HOLD_MINUTES", "7")
    get_settings.cache_clear()
    yield 7
    monkeypatch.undo()
    get_settings.cache_clear()


async def test_create_booking_holds_for_the_configured_minutes_and_expires_when_the_timer_fires(
    flow: Flow, hold_minutes: int
) -> None:
    student, mentor = await flow.user("student"), await flow.bookable_mentor("INR")
    before = flow.clock.now()
    created = await flow.call(
        "POST",
        "bookings",
        {"mentor_id": str(mentor.id), "start": slot(3, 10), "length_minutes": 60},
        user=student,
    )
    assert created.status == 201, created.body
    booking_id = uuid.UUID(created.body["id"])
    await flow.waiting_for_payment(booking_id)
    hold = (await flow.rows(booking_id)).booking["hold_expires_at"]
    assert timedelta(minutes=hold_minutes) <= hold - before < timedelta(minutes=hold_minutes + 1)

    await flow.set_clock(hold - timedelta(seconds=1))
    await asyncio.sleep(0.3)  # a wrongly early timer would fire now
    assert (await flow.rows(booking_id)).booking["status"] == "pending_payment"
    await flow.set_clock(hold)

    final = await flow.finished(booking_id)
    assert final["output"]["booking_status"] == "expired"
    await flow.settled(booking_id, "expired", "failed")


async def test_a_students_late_cancellation_through_the_route_refunds_the_policys_percent(flow: Flow) -> None:
    student, mentor = await flow.user("student"), await flow.bookable_mentor("USD")
    created = await flow.call(
        "POST",
        "bookings",
        {"mentor_id": str(mentor.id), "start": slot(3, 10), "length_minutes": 60},
        user=student,
    )
    assert created.status == 201, created.body
    booking_id, checkout = uuid.UUID(created.body["id"]), created.body["payment"]
    await flow.waiting_for_payment(booking_id)
    await asyncio.to_thread(flow.stripe.succeed, checkout["order_id"])
    await flow.finished(booking_id)
    await flow.settled(booking_id, "confirmed", "succeeded")
    # This booking's policy snapshot grants 40% inside the cutoff; its start is now 2 hours away.
    start = datetime.now(UTC) + timedelta(hours=2)
    await flow.db.execute(
        "UPDATE bookings SET policy = jsonb_set(policy, '{late_cancel_refund_percent}', '40'),"
        " scheduled_at = $2::timestamptz, ends_at = $2::timestamptz + interval '1 hour' WHERE id = $1",
        booking_id,
        start,
    )

    reply = await flow.call("POST", f"bookings/{booking_id}/cancel", {"reason": "sick"}, user=student)

    assert reply.status == 200, reply.body
    due = PRICE["USD"] * 40 // 100
    rows = await flow.settled(booking_id, "cancelled", "partially_refunded")
    assert rows.booking["refund_due_minor"] == due
    assert rows.refund is not None
    assert (rows.refund["amount_minor"], rows.refund["reason"], rows.refund["status"]) == (
        due,
        "cancellation",
        "succeeded",
    )
    sent = [r for r in flow.stripe.refunds.values() if r["payment_intent"] == checkout["order_id"]]
    assert [(r["id"], r["amount"]) for r in sent] == [(rows.refund["provider_refund_id"], due)]


async def test_a_razorpay_authorisation_leaves_the_payment_pending(flow: Flow) -> None:
    booking_id, _, checkout = await flow.checkout("INR")
    await flow.waiting_for_payment(booking_id)

    await asyncio.to_thread(flow.razorpay.pay, checkout["order_id"], "authorized")
    await asyncio.to_thread(flow.razorpay.wait_for_webhooks)

    rows = await flow.settled(booking_id, "pending_payment", "pending")
    assert rows.payment is not None and rows.payment["provider_payment_id"].startswith("pay_")
    assert rows.refund is None


async def test_a_razorpay_refund_is_resent_with_the_same_idempotency_key(flow: Flow) -> None:
    booking_id, _, checkout = await flow.checkout("INR")
    await flow.waiting_for_payment(booking_id)
    await asyncio.to_thread(flow.razorpay.pay, checkout["order_id"], "captured")
    await flow.finished(booking_id)
    await flow.settled(booking_id, "confirmed", "succeeded")
    await flow.db.execute(
        "UPDATE bookings SET status = 'cancelled', cancelled_at = now(), cancelled_by = mentor_id,"
        " cancelled_by_role = 'mentor', refund_due_minor = price_minor WHERE id = $1",
        booking_id,
    )
    # Razorpay makes the refund but the answer never arrives in time (nor its webhook).
    flow.razorpay.set_webhook_url(None)
    flow.razorpay.faults.hang_next(REFUND_ROUTE, 1, seconds=2.0, happen=True)
    calls = flow.razorpay.faults.calls[REFUND_ROUTE]

    await flow.reconcile()
    rows = await flow.rows(booking_id)
    assert rows.refund is not None and rows.refund["status"] == "requested"
    await flow.reconcile()  # sends the written refund again, with its key

    rows = await flow.settled(booking_id, "cancelled", "refunded")
    assert rows.refund is not None and rows.payment is not None
    assert flow.razorpay.faults.calls[REFUND_ROUTE] - calls == 2
    made = [r for r in flow.razorpay.refunds.values() if r["payment_id"] == rows.payment["provider_payment_id"]]
    assert [r["id"] for r in made] == [rows.refund["provider_refund_id"]]
    assert made[0]["notes"]["refund_key"] == rows.refund["idempotency_key"]


async def test_one_provider_object_belongs_to_one_payment(flow: Flow) -> None:
    booking_id, _, checkout = await flow.checkout("INR")
    other_booking, _ = await flow.booking("INR")
    with pytest.raises(asyncpg.UniqueViolationError, match="payments_provider_id_key"):
        await flow.db.execute(
            "INSERT INTO payments (booking_id, provider, provider_id, amount_minor, currency)"
            " VALUES ($1, 'razorpay', $2, 100, 'INR')",
            other_booking,
            checkout["order_id"],
        )
    assert booking_id != other_booking
