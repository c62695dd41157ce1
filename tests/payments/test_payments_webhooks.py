"""Webhooks: duplicates, replays and reordered deliveries change state once; forged, stale and
malformed ones are refused with problem+json (never 500) and change nothing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time

from payments_helpers import Flow

from devhost.fakes.webhooks import Delivery


def about(deliveries: list[Delivery], object_id: str) -> list[Delivery]:
    return [d for d in deliveries if object_id.encode() in d.body]


async def event_ids(flow: Flow, provider: str, object_id: str) -> list[str]:
    rows = await flow.db.fetch(
        "SELECT event_id FROM webhook_events WHERE provider = $1 AND payload::text LIKE '%' || $2 || '%'",
        provider,
        object_id,
    )
    return sorted(r["event_id"] for r in rows)


async def test_duplicate_razorpay_deliveries_and_replays_change_state_once(flow: Flow) -> None:
    flow.razorpay.set_webhook_duplicates(2)
    booking_id, _, checkout = await flow.checkout("INR")
    await flow.waiting_for_payment(booking_id)

    await asyncio.to_thread(flow.razorpay.pay, checkout["order_id"], "captured")
    await flow.finished(booking_id)
    sent = about(flow.razorpay.deliveries, checkout["order_id"])
    replay = await asyncio.to_thread(flow.razorpay.redeliver, sent[-1].event_id)

    assert {d.status for d in sent} | {replay.status} == {200}
    assert len(sent) == 3 * len({d.event_id for d in sent})
    assert await event_ids(flow, "razorpay", checkout["order_id"]) == sorted({d.event_id for d in sent})
    rows = await flow.settled(booking_id, "confirmed", "succeeded")
    assert rows.refund is None
    # payment.captured and order.paid are distinct events (each may raise PaymentConfirmed); the copies
    # and the replay raise nothing, and the booking is confirmed by one activity.
    history = await asyncio.to_thread(flow.durable.history, str(booking_id))
    kinds = [e["EventType"] for e in history]
    assert kinds.count("EventRaised") <= 2
    assert kinds.count("TaskScheduled") == 2  # create the order, confirm the booking


async def test_reordered_razorpay_events_never_move_a_payment_back(flow: Flow) -> None:
    booking_id, _, checkout = await flow.checkout("INR")
    await flow.waiting_for_payment(booking_id)
    flow.razorpay.hold_webhooks()

    await asyncio.to_thread(flow.razorpay.pay, checkout["order_id"], "captured")
    await asyncio.to_thread(flow.razorpay.release_webhooks, "reverse")  # order.paid, captured, then authorized

    await flow.finished(booking_id)
    kinds = [d.event_type for d in about(flow.razorpay.deliveries, checkout["order_id"])]
    assert kinds.index("payment.authorized") > kinds.index("payment.captured")
    rows = await flow.settled(booking_id, "confirmed", "succeeded")
    assert rows.refund is None


async def test_a_stripe_failure_delivered_after_the_success_is_ignored(flow: Flow) -> None:
    booking_id, _, checkout = await flow.checkout("USD")
    await flow.waiting_for_payment(booking_id)
    flow.stripe.hold_webhooks()

    await asyncio.to_thread(flow.stripe.fail, checkout["order_id"])
    await asyncio.to_thread(flow.stripe.succeed, checkout["order_id"])  # the payer retried with another card
    await asyncio.to_thread(flow.stripe.release_webhooks, "reverse")  # the success first, the failure last

    final = await flow.finished(booking_id)
    assert final["output"]["booking_status"] == "confirmed"
    await asyncio.to_thread(flow.stripe.wait_for_webhooks)
    kinds = [d.event_type for d in about(flow.stripe.deliveries, checkout["order_id"])]
    assert kinds.index("payment_intent.payment_failed") > kinds.index("payment_intent.succeeded")
    rows = await flow.settled(booking_id, "confirmed", "succeeded")
    assert rows.refund is None


async def test_forged_razorpay_webhooks_are_refused_and_change_nothing(flow: Flow) -> None:
    booking_id, _, checkout = await flow.checkout("INR")
    await flow.waiting_for_payment(booking_id)

    flow.razorpay.webhook_signing = "wrong_secret"
    await asyncio.to_thread(flow.razorpay.pay, checkout["order_id"], "captured")
    captured = next(
        d for d in about(flow.razorpay.deliveries, checkout["order_id"]) if d.event_type == "payment.captured"
    )
    flow.razorpay.webhook_signing = "missing"
    await asyncio.to_thread(flow.razorpay.redeliver, captured.event_id)
    sent = about(flow.razorpay.deliveries, checkout["order_id"])

    assert len(sent) >= 2 and {d.status for d in sent} == {400}
    rows = await flow.rows(booking_id)
    assert rows.booking["status"] == "pending_payment"
    assert rows.payment is not None and rows.payment["status"] == "created"
    assert await event_ids(flow, "razorpay", checkout["order_id"]) == []

    # Refused deliveries were not recorded, so the provider's properly signed retry still counts.
    flow.razorpay.webhook_signing = "valid"
    assert (await asyncio.to_thread(flow.razorpay.redeliver, captured.event_id)).status == 200
    await flow.finished(booking_id)
    await flow.settled(booking_id, "confirmed", "succeeded")


async def test_razorpay_webhook_errors_are_problem_json_never_500(flow: Flow) -> None:
    secret = flow.razorpay.webhook_secret
    body = b'{"event": "payment.captured", "payload": {}}'
    good = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    not_json = b"\xff\xfe not json"

    cases = [
        (body, {"X-Razorpay-Signature": "0" * 64}, 400, "invalid_signature"),
        (body, {}, 400, "invalid_signature"),
        (
            not_json,
            {"X-Razorpay-Signature": hmac.new(secret.encode(), not_json, hashlib.sha256).hexdigest()},
            400,
            "invalid_signature",
        ),
        (body, {"X-Razorpay-Signature": good, "X-Razorpay-Event-Id": "evt_malformed"}, 400, "malformed_event"),
    ]
    for raw, headers, status, code in cases:
        reply = await flow.call("POST", "payments/razorpay/webhook", raw=raw, headers=headers)
        assert (reply.status, reply.body["code"]) == (status, code), reply.body
        assert reply.headers["Content-Type"].startswith("application/problem+json")


async def test_stale_and_forged_stripe_webhooks_are_refused_and_change_nothing(flow: Flow) -> None:
    booking_id, _, checkout = await flow.checkout("USD")
    await flow.waiting_for_payment(booking_id)

    flow.stripe.webhook_signing = "stale"
    await asyncio.to_thread(flow.stripe.succeed, checkout["order_id"])
    succeeded = next(
        d for d in about(flow.stripe.deliveries, checkout["order_id"]) if d.event_type == "payment_intent.succeeded"
    )
    for signing in ("wrong_secret", "missing"):
        flow.stripe.webhook_signing = signing  # type: ignore[assignment]
        await asyncio.to_thread(flow.stripe.redeliver, succeeded.event_id)
    sent = about(flow.stripe.deliveries, checkout["order_id"])

    assert len(sent) >= 3 and {d.status for d in sent} == {400}
    rows = await flow.rows(booking_id)
    assert rows.booking["status"] == "pending_payment"
    assert rows.payment is not None and rows.payment["status"] == "created"
    assert await event_ids(flow, "stripe", checkout["order_id"]) == []

    # Refused deliveries were not recorded, so the provider's properly signed retry still counts.
    flow.stripe.webhook_signing = "valid"
    assert (await asyncio.to_thread(flow.stripe.redeliver, succeeded.event_id)).status == 200
    await flow.finished(booking_id)
    await flow.settled(booking_id, "confirmed", "succeeded")


async def test_a_correctly_signed_stripe_event_an_hour_old_is_refused(flow: Flow) -> None:
    payload = json.dumps({"id": "evt_replayed", "type": "payment_intent.succeeded", "data": {"object": {}}}).encode()
    stamp = int(time.time()) - 3600
    signed = f"{stamp}.".encode() + payload
    signature = hmac.new(flow.stripe.webhook_secret.encode(), signed, hashlib.sha256).hexdigest()

    reply = await flow.call(
        "POST", "payments/stripe/webhook", raw=payload, headers={"Stripe-Signature": f"t={stamp},v1={signature}"}
    )

    assert (reply.status, reply.body["code"]) == (400, "invalid_signature")
    assert await flow.db.fetchval("SELECT count(*) FROM webhook_events WHERE event_id = 'evt_replayed'") == 0


async def test_a_forged_checkout_callback_is_refused_and_changes_nothing(flow: Flow) -> None:
    flow.razorpay.set_webhook_url(None)
    booking_id, student, checkout = await flow.checkout("INR")
    await flow.waiting_for_payment(booking_id)
    paid = await asyncio.to_thread(flow.razorpay.pay, checkout["order_id"], "captured")
    other_booking, other_student, other_checkout = await flow.checkout("INR")

    forged = {**paid.callback(), "razorpay_signature": "0" * 64}
    # A genuine signature for another order (the client swaps in its own order id) does not match ours.
    swapped = {**paid.callback(), "razorpay_order_id": other_checkout["order_id"]}
    for fields, booking, student_ in ((forged, booking_id, student), (swapped, other_booking, other_student)):
        reply = await flow.call(
            "POST", "payments/razorpay/verify", {"booking_id": str(booking), **fields}, user=student_
        )
        assert (reply.status, reply.body["code"]) == (400, "invalid_signature"), reply.body

    for booking in (booking_id, other_booking):
        rows = await flow.rows(booking)
        assert rows.booking["status"] == "pending_payment"
        assert rows.payment is not None and rows.payment["status"] == "created"
