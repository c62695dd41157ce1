"""Book -> pay -> signed webhook (or checkout callback) -> confirmed, for each provider, over HTTP."""

from __future__ import annotations

import asyncio

from payments_helpers import PRICE, Flow


async def test_razorpay_payment_confirms_the_booking_through_the_webhook(flow: Flow) -> None:
    booking_id, _, checkout = await flow.checkout("INR")
    assert checkout["provider"] == "razorpay"
    assert checkout["order_id"].startswith("order_")
    assert (checkout["amount_minor"], checkout["currency"]) == (PRICE["INR"], "INR")
    assert checkout["key_id"] == flow.razorpay.key_id
    assert checkout["client_secret"] is None
    assert flow.razorpay.orders[checkout["order_id"]]["receipt"] == str(booking_id)
    await flow.waiting_for_payment(booking_id)

    paid = await asyncio.to_thread(flow.razorpay.pay, checkout["order_id"], "captured")

    final = await flow.finished(booking_id)
    assert final["runtimeStatus"] == "Completed"
    assert final["output"]["booking_status"] == "confirmed"
    rows = await flow.settled(booking_id, "confirmed", "succeeded")
    assert rows.payment is not None
    assert rows.payment["provider"] == "razorpay"
    assert rows.payment["provider_id"] == checkout["order_id"]
    assert rows.payment["provider_payment_id"] == paid.razorpay_payment_id
    assert rows.payment["amount_minor"] == PRICE["INR"]
    assert rows.payment["succeeded_at"] is not None
    assert rows.refund is None
    events = await flow.db.fetch(
        "SELECT event_type, processed_at FROM webhook_events"
        " WHERE provider = 'razorpay' AND payload->'payload'->'payment'->'entity'->>'order_id' = $1",
        checkout["order_id"],
    )
    assert {e["event_type"] for e in events} >= {"payment.captured", "order.paid"}
    assert all(e["processed_at"] is not None for e in events)


async def test_razorpay_checkout_callback_alone_confirms_the_booking(flow: Flow) -> None:
    flow.razorpay.set_webhook_url(None)  # no webhook arrives: the signed callback is enough
    booking_id, student, checkout = await flow.checkout("INR")
    await flow.waiting_for_payment(booking_id)
    paid = await asyncio.to_thread(flow.razorpay.pay, checkout["order_id"], "captured")

    reply = await flow.call(
        "POST", "payments/razorpay/verify", {"booking_id": str(booking_id), **paid.callback()}, user=student
    )

    assert reply.status == 200, reply.body
    assert reply.body["payment_status"] == "succeeded"
    final = await flow.finished(booking_id)
    assert final["output"]["booking_status"] == "confirmed"
    rows = await flow.settled(booking_id, "confirmed", "succeeded")
    assert rows.payment is not None and rows.payment["provider_payment_id"] == paid.razorpay_payment_id
    assert rows.refund is None


async def test_stripe_payment_confirms_the_booking_through_the_webhook(flow: Flow) -> None:
    booking_id, _, checkout = await flow.checkout("USD")
    assert checkout["provider"] == "stripe"
    assert checkout["order_id"].startswith("pi_")
    assert checkout["client_secret"] == flow.stripe.payment_intents[checkout["order_id"]]["client_secret"]
    assert checkout["key_id"] == flow.stripe.publishable_key
    assert (checkout["amount_minor"], checkout["currency"]) == (PRICE["USD"], "USD")
    await flow.waiting_for_payment(booking_id)

    await asyncio.to_thread(flow.stripe.succeed, checkout["order_id"])

    final = await flow.finished(booking_id)
    assert final["output"]["booking_status"] == "confirmed"
    rows = await flow.settled(booking_id, "confirmed", "succeeded")
    assert rows.payment is not None
    assert (rows.payment["provider"], rows.payment["provider_id"]) == ("stripe", checkout["order_id"])
    assert rows.refund is None


async def test_starting_again_never_replaces_the_running_flow_or_creates_a_second_order(flow: Flow) -> None:
    booking_id, student, checkout = await flow.checkout("EUR")
    await flow.waiting_for_payment(booking_id)

    again = await flow.start_payment(booking_id, student)

    assert again.status == 200
    assert again.body["checkout"]["order_id"] == checkout["order_id"]
    history = await asyncio.to_thread(flow.durable.history, str(booking_id))
    assert [e["EventType"] for e in history].count("ExecutionStarted") == 1
    intents = [pi for pi in flow.stripe.payment_intents.values() if pi["metadata"].get("booking_id") == str(booking_id)]
    assert len(intents) == 1


async def test_only_the_bookings_student_may_start_or_read_its_payment(flow: Flow) -> None:
    booking_id, _ = await flow.booking("INR")
    other = await flow.user("student")

    assert (await flow.start_payment(booking_id, other)).status == 404
    assert (await flow.call("GET", f"bookings/{booking_id}/payment", user=other)).status == 404
    rows = await flow.rows(booking_id)
    assert rows.booking["status"] == "pending_payment" and rows.payment is None


async def test_a_booking_that_is_not_awaiting_payment_cannot_start_paying(flow: Flow) -> None:
    booking_id, student = await flow.booking("INR")
    await flow.db.execute("UPDATE bookings SET status = 'expired' WHERE id = $1", booking_id)

    reply = await flow.start_payment(booking_id, student)

    assert (reply.status, reply.body["code"]) == (409, "booking_not_payable")
    assert await asyncio.to_thread(flow.durable.status, str(booking_id)) is None
    assert (await flow.rows(booking_id)).payment is None


async def test_concurrent_starts_make_one_flow_and_one_order(flow: Flow) -> None:
    booking_id, student = await flow.booking("USD")

    replies = await asyncio.gather(*(flow.start_payment(booking_id, student) for _ in range(5)))

    assert {r.status for r in replies} <= {200, 202}
    await flow.waiting_for_payment(booking_id)
    history = await asyncio.to_thread(flow.durable.history, str(booking_id))
    assert [e["EventType"] for e in history].count("ExecutionStarted") == 1
    intents = [pi for pi in flow.stripe.payment_intents.values() if pi["metadata"].get("booking_id") == str(booking_id)]
    rows = await flow.rows(booking_id)
    assert rows.payment is not None and [pi["id"] for pi in intents] == [rows.payment["provider_id"]]
