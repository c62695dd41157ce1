"""Identical webhook deliveries arriving at once are processed once: the rest wait and are duplicates."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json

from payments_helpers import Flow


async def test_four_identical_deliveries_at_once_are_processed_once(flow: Flow) -> None:
    flow.razorpay.set_webhook_url(None)
    booking_id, _, checkout = await flow.checkout("INR")
    await flow.waiting_for_payment(booking_id)
    entity = {"id": "pay_raced", "order_id": checkout["order_id"], "status": "captured"}
    body = json.dumps({"event": "payment.captured", "payload": {"payment": {"entity": entity}}}).encode()
    signature = hmac.new(flow.razorpay.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Razorpay-Signature": signature, "X-Razorpay-Event-Id": f"evt_raced_{booking_id}"}

    replies = await asyncio.gather(
        *(flow.call("POST", "payments/razorpay/webhook", raw=body, headers=headers) for _ in range(4))
    )

    assert [r.status for r in replies] == [200] * 4, [r.body for r in replies]
    assert sorted(r.body["duplicate"] for r in replies) == [False, True, True, True]
    final = await flow.finished(booking_id)
    assert final["output"]["booking_status"] == "confirmed"
    history = await asyncio.to_thread(flow.durable.history, str(booking_id))
    assert [e["EventType"] for e in history].count("EventRaised") == 1
    processed = await flow.db.fetchval(
        "SELECT count(*) FROM webhook_events WHERE event_id = $1 AND processed_at IS NOT NULL",
        headers["X-Razorpay-Event-Id"],
    )
    assert processed == 1
