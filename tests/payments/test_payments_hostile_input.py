"""Hostile inputs to the payment callbacks and webhooks are 400/422 problem+json, never 500, and
record nothing: non-ASCII signatures, oversized or unprintable event ids, non-string event types."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from urllib.parse import urlsplit

import pytest
from payments_helpers import Flow

from devhost.fakes.stripe import signature_header


async def raw_post(flow: Flow, path: str, body: bytes, headers: dict[str, bytes]) -> tuple[int, dict[str, str], bytes]:
    """POST with header bytes sent as they are (HTTP clients refuse non-ASCII header values)."""
    url = urlsplit(flow.host.url)
    assert url.hostname is not None and url.port is not None
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    head = b"".join(name.encode() + b": " + value + b"\r\n" for name, value in headers.items())
    writer.write(
        f"POST /api/{path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n".encode()
        + head
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    header_block, _, payload = data.partition(b"\r\n\r\n")
    lines = header_block.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    reply_headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, reply_headers, payload


def assert_problem(status: int, headers: dict[str, str], payload: bytes, code: str) -> None:
    assert status == 400, (status, payload)
    assert headers["content-type"].startswith("application/problem+json")
    assert json.loads(payload)["code"] == code


def razorpay_signature(flow: Flow, body: bytes) -> str:
    return hmac.new(flow.razorpay.webhook_secret.encode(), body, hashlib.sha256).hexdigest()


async def test_a_non_ascii_checkout_callback_signature_is_refused(flow: Flow) -> None:
    booking_id, student, checkout = await flow.checkout("INR")
    reply = await flow.call(
        "POST",
        "payments/razorpay/verify",
        {
            "booking_id": str(booking_id),
            "razorpay_payment_id": "pay_x",
            "razorpay_order_id": checkout["order_id"],
            "razorpay_signature": "é" * 64,
        },
        user=student,
    )
    assert (reply.status, reply.body["code"]) == (400, "invalid_signature"), reply.body
    assert (await flow.rows(booking_id)).payment["status"] == "created"  # type: ignore[index]


async def test_a_non_ascii_razorpay_webhook_signature_is_refused(flow: Flow) -> None:
    body = b'{"event": "payment.captured", "payload": {}}'
    status, headers, payload = await raw_post(
        flow,
        "payments/razorpay/webhook",
        body,
        {"X-Razorpay-Signature": ("é" * 64).encode("latin-1"), "X-Razorpay-Event-Id": b"evt_non_ascii_sig"},
    )
    assert_problem(status, headers, payload, "invalid_signature")


async def test_a_non_ascii_stripe_signature_header_is_refused(flow: Flow) -> None:
    body = b'{"id": "evt_non_ascii", "type": "x", "data": {"object": {"id": "pi_1"}}}'
    header = f"t={int(time.time())},v1={'é' * 64}".encode("latin-1")
    status, headers, payload = await raw_post(flow, "payments/stripe/webhook", body, {"Stripe-Signature": header})
    assert_problem(status, headers, payload, "invalid_signature")
    assert await flow.db.fetchval("SELECT count(*) FROM webhook_events WHERE event_id = 'evt_non_ascii'") == 0


@pytest.mark.parametrize("event_id", ["e" * 256, "evt with space", "evt\tid", "évt"])
async def test_a_razorpay_event_id_header_out_of_bounds_is_refused(flow: Flow, event_id: str) -> None:
    booking_id, _, checkout = await flow.checkout("INR")
    entity = {"id": "pay_long_id", "order_id": checkout["order_id"], "status": "captured"}
    body = json.dumps({"event": "payment.captured", "payload": {"payment": {"entity": entity}}}).encode()
    status, headers, payload = await raw_post(
        flow,
        "payments/razorpay/webhook",
        body,
        {
            "X-Razorpay-Signature": razorpay_signature(flow, body).encode(),
            "X-Razorpay-Event-Id": event_id.encode("latin-1"),
        },
    )
    assert_problem(status, headers, payload, "malformed_event")
    assert (await flow.rows(booking_id)).payment["status"] == "created"  # type: ignore[index]


async def test_a_255_character_razorpay_event_id_is_accepted(flow: Flow) -> None:
    body = json.dumps({"event": "payment.dispute.created", "payload": {}}).encode()
    reply = await flow.call(
        "POST",
        "payments/razorpay/webhook",
        raw=body,
        headers={"X-Razorpay-Signature": razorpay_signature(flow, body), "X-Razorpay-Event-Id": "e" * 255},
    )
    assert reply.status == 200, reply.body


@pytest.mark.parametrize("kind", [["payment.captured"], {"a": 1}, 7, None])
async def test_a_signed_razorpay_event_whose_type_is_not_a_string_is_refused(flow: Flow, kind: object) -> None:
    body = json.dumps({"event": kind, "payload": {}}).encode()
    reply = await flow.call(
        "POST",
        "payments/razorpay/webhook",
        raw=body,
        headers={"X-Razorpay-Signature": razorpay_signature(flow, body), "X-Razorpay-Event-Id": "evt_kind"},
    )
    assert (reply.status, reply.body["code"]) == (400, "malformed_event"), reply.body
    assert reply.headers["Content-Type"].startswith("application/problem+json")


@pytest.mark.parametrize("kind", [["payment_intent.succeeded"], {"a": 1}, 7])
async def test_a_signed_stripe_event_whose_type_is_not_a_string_is_refused(flow: Flow, kind: object) -> None:
    body = json.dumps({"id": "evt_kind", "type": kind, "data": {"object": {"id": "pi_1"}}}).encode()
    header = signature_header(body, flow.stripe.webhook_secret, int(time.time()))
    reply = await flow.call("POST", "payments/stripe/webhook", raw=body, headers={"Stripe-Signature": header})
    assert (reply.status, reply.body["code"]) == (400, "malformed_event"), reply.body
    assert reply.headers["Content-Type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    "body",
    [b'{"event": 1' + b"1" * 5000 + b"}", b"[" * 100_000 + b"]" * 100_000],
    ids=["integer-beyond-the-conversion-limit", "nesting-deeper-than-the-stack"],
)
async def test_a_signed_razorpay_body_json_cannot_parse_is_refused(flow: Flow, body: bytes) -> None:
    reply = await flow.call(
        "POST",
        "payments/razorpay/webhook",
        raw=body,
        headers={"X-Razorpay-Signature": razorpay_signature(flow, body), "X-Razorpay-Event-Id": "evt_unparseable"},
    )
    assert (reply.status, reply.body["code"]) == (400, "malformed_event"), reply.body
