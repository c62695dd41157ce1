"""The fake Razorpay, driven by the real razorpay SDK over HTTP (devhost/fakes/razorpay.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import razorpay
import requests
from razorpay.errors import BadRequestError, GatewayError, ServerError, SignatureVerificationError

from devhost.fakes.razorpay import FakeRazorpay
from devhost.fakes.receiver import WebhookReceiver


def sdk(fake: FakeRazorpay) -> razorpay.Client:
    return razorpay.Client(auth=(fake.key_id, fake.key_secret), base_url=fake.url)


def new_order(client: razorpay.Client, receipt: str = "booking-1", amount: int = 50_000) -> dict[str, Any]:
    order: dict[str, Any] = client.order.create(
        {"amount": amount, "currency": "INR", "receipt": receipt, "notes": {"booking_id": receipt}}
    )
    return order


def events(receiver: WebhookReceiver) -> list[str]:
    return [json.loads(r.body)["event"] for r in receiver.received]


def test_an_order_is_created_fetched_and_provider_shaped(fake_razorpay: FakeRazorpay) -> None:
    client = sdk(fake_razorpay)
    order = new_order(client)
    assert order["id"].startswith("order_") and len(order["id"]) == len("order_") + 14
    assert {k: order[k] for k in ("entity", "amount", "amount_due", "currency", "status", "attempts")} == {
        "entity": "order",
        "amount": 50_000,
        "amount_due": 50_000,
        "currency": "INR",
        "status": "created",
        "attempts": 0,
    }
    assert client.order.fetch(order["id"]) == order
    assert client.order.payments(order["id"]) == {"entity": "collection", "count": 0, "items": []}


def test_a_unique_receipt_makes_a_retried_create_return_the_same_order(fake_razorpay: FakeRazorpay) -> None:
    client = sdk(fake_razorpay)

    def create(receipt: str, amount: int = 50_000) -> dict[str, Any]:
        order: dict[str, Any] = client.order.create(
            {"amount": amount, "currency": "INR", "receipt": receipt, "unique_receipt": True}
        )
        return order

    first = create("booking-7")
    assert create("booking-7")["id"] == first["id"]
    assert create("booking-8")["id"] != first["id"]
    with pytest.raises(BadRequestError, match="Order receipt should be unique"):
        create("booking-7", amount=60_000)
    assert len(fake_razorpay.orders) == 2


def test_without_unique_receipt_a_retry_makes_a_second_order_as_on_razorpay(fake_razorpay: FakeRazorpay) -> None:
    client = sdk(fake_razorpay)
    assert new_order(client, receipt="booking-9")["id"] != new_order(client, receipt="booking-9")["id"]
    with pytest.raises(BadRequestError, match="needs a receipt"):
        client.order.create({"amount": 1000, "currency": "INR", "unique_receipt": True})


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"amount": 99, "currency": "INR"}, "at least INR 1.00"),
        ({"amount": "500", "currency": "INR"}, "integer"),
        ({"currency": "INR"}, "amount: is required"),
        ({"amount": 500, "currency": "XYZ"}, "Currency"),
        ({"amount": 500, "currency": "INR", "receipt": "r" * 41}, "40 characters"),
        ({"amount": 500, "currency": "INR", "colour": "red"}, "colour is/are not required"),
    ],
)
def test_bad_orders_raise_the_sdks_bad_request_error(
    fake_razorpay: FakeRazorpay, payload: dict[str, Any], message: str
) -> None:
    with pytest.raises(BadRequestError, match=message):
        sdk(fake_razorpay).order.create(payload)


def test_unknown_ids_and_wrong_keys_are_bad_requests(fake_razorpay: FakeRazorpay) -> None:
    with pytest.raises(BadRequestError, match="The id provided does not exist"):
        sdk(fake_razorpay).order.fetch("order_DoesNotExist00")
    with pytest.raises(BadRequestError, match="The id provided does not exist"):
        sdk(fake_razorpay).refund.fetch("rfnd_DoesNotExist00")
    wrong = razorpay.Client(auth=(fake_razorpay.key_id, "not-the-secret"), base_url=fake_razorpay.url)
    with pytest.raises(BadRequestError, match="Authentication failed"):
        wrong.order.fetch("order_DoesNotExist00")
    response = requests.get(f"{fake_razorpay.url}/v1/orders/x", timeout=5)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "BAD_REQUEST_ERROR"


def test_the_checkout_signature_verifies_with_the_sdk_and_fails_when_tampered(fake_razorpay: FakeRazorpay) -> None:
    client = sdk(fake_razorpay)
    order = new_order(client)
    checkout = fake_razorpay.pay(order["id"])
    assert checkout.razorpay_order_id == order["id"]
    assert client.utility.verify_payment_signature(checkout.callback()) is True

    tampered = {**checkout.callback(), "razorpay_order_id": new_order(client, receipt="other")["id"]}
    with pytest.raises(SignatureVerificationError):
        client.utility.verify_payment_signature(tampered)
    other_secret = razorpay.Client(auth=(fake_razorpay.key_id, "another-secret"), base_url=fake_razorpay.url)
    with pytest.raises(SignatureVerificationError):
        other_secret.utility.verify_payment_signature(checkout.callback())


def test_a_captured_payment_is_visible_through_the_api(fake_razorpay: FakeRazorpay) -> None:
    client = sdk(fake_razorpay)
    order = new_order(client)
    checkout = fake_razorpay.pay(order["id"], method="upi")
    payment = client.payment.fetch(checkout.razorpay_payment_id)
    assert (payment["status"], payment["captured"], payment["order_id"], payment["method"]) == (
        "captured",
        True,
        order["id"],
        "upi",
    )
    assert client.order.fetch(order["id"])["status"] == "paid"
    assert [p["id"] for p in client.order.payments(order["id"])["items"]] == [checkout.razorpay_payment_id]


def test_webhooks_reach_the_receiver_signed_with_an_event_id(
    fake_razorpay: FakeRazorpay, webhook_receiver: WebhookReceiver
) -> None:
    fake_razorpay.set_webhook_url(f"{webhook_receiver.url}/api/payments/razorpay/webhook")
    client = sdk(fake_razorpay)
    checkout = fake_razorpay.pay(new_order(client)["id"])

    assert events(webhook_receiver) == ["payment.authorized", "payment.captured", "order.paid"]
    event_ids = set()
    for received in webhook_receiver.received:
        assert received.path == "/api/payments/razorpay/webhook"
        assert received.headers["Content-Type"] == "application/json"
        signature = received.headers["X-Razorpay-Signature"]
        body = received.body.decode()
        assert client.utility.verify_webhook_signature(body, signature, fake_razorpay.webhook_secret) is True
        with pytest.raises(SignatureVerificationError):
            client.utility.verify_webhook_signature(body.replace("captured", "failed"), signature, "x")
        with pytest.raises(SignatureVerificationError):
            client.utility.verify_webhook_signature(body + " ", signature, fake_razorpay.webhook_secret)
        event_ids.add(received.headers["X-Razorpay-Event-Id"])
    assert len(event_ids) == 3
    captured = json.loads(webhook_receiver.received[1].body)
    assert captured["payload"]["payment"]["entity"]["id"] == checkout.razorpay_payment_id
    assert captured["contains"] == ["payment"]
    assert json.loads(webhook_receiver.received[2].body)["payload"]["order"]["entity"]["status"] == "paid"


def test_a_wrong_webhook_secret_is_a_switch(fake_razorpay: FakeRazorpay, webhook_receiver: WebhookReceiver) -> None:
    fake_razorpay.set_webhook_url(webhook_receiver.url)
    fake_razorpay.webhook_signing = "wrong_secret"
    fake_razorpay.pay(new_order(sdk(fake_razorpay))["id"])
    received = webhook_receiver.received[0]
    with pytest.raises(SignatureVerificationError):
        sdk(fake_razorpay).utility.verify_webhook_signature(
            received.body.decode(), received.headers["X-Razorpay-Signature"], fake_razorpay.webhook_secret
        )


def test_duplicate_delivery_repeats_the_event_id(
    fake_razorpay: FakeRazorpay, webhook_receiver: WebhookReceiver
) -> None:
    fake_razorpay.set_webhook_url(webhook_receiver.url)
    fake_razorpay.set_webhook_duplicates(1)
    fake_razorpay.pay(new_order(sdk(fake_razorpay))["id"])
    assert events(webhook_receiver) == [
        "payment.authorized",
        "payment.authorized",
        "payment.captured",
        "payment.captured",
        "order.paid",
        "order.paid",
    ]
    ids = [r.headers["X-Razorpay-Event-Id"] for r in webhook_receiver.received]
    assert ids[0::2] == ids[1::2]
    assert len(set(ids)) == 3


def test_held_webhooks_are_delivered_out_of_order(
    fake_razorpay: FakeRazorpay, webhook_receiver: WebhookReceiver
) -> None:
    fake_razorpay.set_webhook_url(webhook_receiver.url)
    fake_razorpay.hold_webhooks()
    fake_razorpay.pay(new_order(sdk(fake_razorpay))["id"])
    assert webhook_receiver.received == []
    fake_razorpay.release_webhooks("reverse")
    assert events(webhook_receiver) == ["order.paid", "payment.captured", "payment.authorized"]


def test_a_failed_payment_can_be_authorised_late(
    fake_razorpay: FakeRazorpay, webhook_receiver: WebhookReceiver
) -> None:
    fake_razorpay.set_webhook_url(webhook_receiver.url)
    client = sdk(fake_razorpay)
    order = new_order(client)
    checkout = fake_razorpay.pay(order["id"], "failed")
    assert checkout.razorpay_signature is None
    payment = client.payment.fetch(checkout.razorpay_payment_id)
    assert (payment["status"], payment["error_reason"]) == ("failed", "payment_cancelled")
    assert client.order.fetch(order["id"])["status"] == "attempted"

    fake_razorpay.authorize_late(checkout.razorpay_payment_id)
    assert client.payment.fetch(checkout.razorpay_payment_id)["status"] == "captured"
    assert client.order.fetch(order["id"])["status"] == "paid"
    assert events(webhook_receiver) == ["payment.failed", "payment.authorized", "payment.captured", "order.paid"]


def test_an_authorised_payment_is_captured_through_the_api(fake_razorpay: FakeRazorpay) -> None:
    client = sdk(fake_razorpay)
    checkout = fake_razorpay.pay(new_order(client)["id"], "authorized")
    assert client.payment.fetch(checkout.razorpay_payment_id)["status"] == "authorized"
    with pytest.raises(BadRequestError, match="not been captured"):
        client.payment.refund(checkout.razorpay_payment_id, {"amount": 100})
    captured = client.payment.capture(checkout.razorpay_payment_id, 50_000, {"currency": "INR"})
    assert captured["status"] == "captured"


def test_refunds_are_idempotent_bounded_and_reported_by_webhook(
    fake_razorpay: FakeRazorpay, webhook_receiver: WebhookReceiver
) -> None:
    fake_razorpay.set_webhook_url(webhook_receiver.url)
    client = sdk(fake_razorpay)
    payment_id = fake_razorpay.pay(new_order(client)["id"]).razorpay_payment_id
    headers = {"X-Refund-Idempotency": "booking-1-refund-1"}

    refund = client.payment.refund(payment_id, {"amount": 20_000, "speed": "normal"}, headers=headers)
    assert refund["id"].startswith("rfnd_")
    assert (refund["entity"], refund["amount"], refund["payment_id"], refund["status"]) == (
        "refund",
        20_000,
        payment_id,
        "processed",
    )
    assert client.payment.refund(payment_id, {"amount": 20_000, "speed": "normal"}, headers=headers) == refund
    with pytest.raises(BadRequestError, match="Different request with the same idempotency key"):
        client.payment.refund(payment_id, {"amount": 10_000}, headers=headers)
    with pytest.raises(BadRequestError, match="greater than amount captured"):
        client.payment.refund(payment_id, {"amount": 40_000})
    assert client.refund.fetch(refund["id"]) == refund

    with pytest.raises(BadRequestError, match="at least 10"):
        client.payment.refund(payment_id, {"amount": 100}, headers={"X-Refund-Idempotency": "short"})
    rest_key = {"X-Refund-Idempotency": "booking-1-refund-rest"}
    rest = client.payment.refund(payment_id, {"receipt": "booking-1-rest"}, headers=rest_key)
    assert rest["amount"] == 30_000
    assert client.payment.refund(payment_id, {"receipt": "booking-1-rest"}, headers=rest_key)["id"] == rest["id"]
    with pytest.raises(BadRequestError, match="fully refunded"):
        client.payment.refund(payment_id, {"amount": 100})
    payment = client.payment.fetch(payment_id)
    assert (payment["status"], payment["amount_refunded"], payment["refund_status"]) == ("refunded", 50_000, "full")

    fake_razorpay.wait_for_webhooks()
    assert events(webhook_receiver)[-2:] == ["refund.processed", "refund.processed"]
    refunded = [json.loads(r.body)["payload"]["refund"]["entity"]["id"] for r in webhook_receiver.received[-2:]]
    assert refunded == [refund["id"], rest["id"]]


def test_a_pending_refund_can_fail_and_the_payment_is_refundable_again(
    fake_razorpay: FakeRazorpay, webhook_receiver: WebhookReceiver
) -> None:
    fake_razorpay.set_webhook_url(webhook_receiver.url)
    fake_razorpay.refund_outcome = "pending"
    client = sdk(fake_razorpay)
    payment_id = fake_razorpay.pay(new_order(client)["id"]).razorpay_payment_id
    refund = client.payment.refund(payment_id, {})
    assert refund["status"] == "pending"

    fake_razorpay.settle_refund(refund["id"], "failed")
    assert client.refund.fetch(refund["id"])["status"] == "failed"
    assert client.payment.fetch(payment_id)["amount_refunded"] == 0
    assert events(webhook_receiver)[-1] == "refund.failed"
    assert client.payment.refund(payment_id, {})["amount"] == 50_000


def test_injected_5xx_raise_the_sdks_server_errors_then_recover(fake_razorpay: FakeRazorpay) -> None:
    client = sdk(fake_razorpay)
    fake_razorpay.faults.fail_next("POST /v1/orders", 2)
    fake_razorpay.faults.fail_next("GET /v1/orders/{id}", status=502)
    with pytest.raises(ServerError):
        new_order(client)
    with pytest.raises(ServerError):
        new_order(client)
    order = new_order(client)
    with pytest.raises(GatewayError):
        client.order.fetch(order["id"])
    assert client.order.fetch(order["id"])["id"] == order["id"]
    assert fake_razorpay.faults.calls["POST /v1/orders"] == 3
    assert len(fake_razorpay.orders) == 1


def test_a_hang_times_the_sdk_out_and_the_order_still_happens(fake_razorpay: FakeRazorpay) -> None:
    client = sdk(fake_razorpay)
    fake_razorpay.faults.hang_next("POST /v1/orders", seconds=2.0)
    data = {"amount": 50_000, "currency": "INR", "receipt": "booking-3", "unique_receipt": True}
    with pytest.raises(requests.exceptions.Timeout):
        client.order.create(data, timeout=0.2)
    retried = client.order.create(data, timeout=5)
    fake_razorpay.wait_for_requests()
    assert list(fake_razorpay.orders) == [retried["id"]]


def test_a_delay_switch_applies_to_every_call_of_a_route(fake_razorpay: FakeRazorpay) -> None:
    client = sdk(fake_razorpay)
    order = new_order(client)
    fake_razorpay.faults.delay("GET /v1/orders/{id}", 2.0)
    with pytest.raises(requests.exceptions.Timeout):
        client.order.fetch(order["id"], timeout=0.2)
    with pytest.raises(requests.exceptions.Timeout):
        client.order.fetch(order["id"], timeout=0.2)
    fake_razorpay.faults.delay("GET /v1/orders/{id}", 0)
    assert client.order.fetch(order["id"], timeout=5)["id"] == order["id"]


def test_a_lost_request_times_out_and_has_no_effect(fake_razorpay: FakeRazorpay) -> None:
    fake_razorpay.faults.hang_next("POST /v1/orders", seconds=1.0, happen=False)
    with pytest.raises(requests.exceptions.Timeout):
        sdk(fake_razorpay).order.create({"amount": 50_000, "currency": "INR"}, timeout=0.2)
    fake_razorpay.wait_for_requests()
    assert fake_razorpay.orders == {}


def test_failed_deliveries_are_retried_on_the_schedule(
    fake_razorpay: FakeRazorpay, webhook_receiver: WebhookReceiver
) -> None:
    fake_razorpay.set_webhook_url(webhook_receiver.url)
    fake_razorpay.set_webhook_retries(0.05, 0.05, 0.05)
    webhook_receiver.fail_next(4, status=503)
    fake_razorpay.pay(new_order(sdk(fake_razorpay))["id"])
    deliveries = fake_razorpay.wait_for_webhooks()

    by_event: dict[str, list[int | None]] = {}
    for delivery in deliveries:
        by_event.setdefault(delivery.event_type, []).append(delivery.status)
    assert all(statuses[-1] == 200 and statuses.count(200) == 1 for statuses in by_event.values())
    assert sorted(by_event) == ["order.paid", "payment.authorized", "payment.captured"]
    assert len(deliveries) == 3 + 4  # every 503 was followed by one more attempt


def test_an_order_cannot_be_paid_twice(fake_razorpay: FakeRazorpay) -> None:
    order = new_order(sdk(fake_razorpay))
    fake_razorpay.pay(order["id"])
    with pytest.raises(ValueError, match="already paid"):
        fake_razorpay.pay(order["id"])
    with pytest.raises(KeyError):
        fake_razorpay.pay("order_Unknown0000000")


def test_reset_forgets_objects_and_switches_but_keeps_the_address(fake_razorpay: FakeRazorpay) -> None:
    client = sdk(fake_razorpay)
    order = new_order(client)
    url = fake_razorpay.url
    fake_razorpay.faults.fail_next("*", 5)
    fake_razorpay.set_webhook_duplicates(3)
    fake_razorpay.refund_outcome = "pending"
    fake_razorpay.reset()

    assert (fake_razorpay.url, fake_razorpay.orders, fake_razorpay.requests) == (url, {}, [])
    assert (fake_razorpay.webhooks.duplicates, fake_razorpay.refund_outcome) == (0, "processed")
    with pytest.raises(BadRequestError, match="does not exist"):
        client.order.fetch(order["id"])
    assert fake_razorpay.faults.calls["GET /v1/orders/{id}"] == 1


async def test_async_tests_run_controls_without_blocking_their_loop(fake_razorpay: FakeRazorpay) -> None:
    order = new_order(sdk(fake_razorpay))
    checkout = await fake_razorpay.acall(fake_razorpay.pay_async(order["id"], "authorized"))
    assert fake_razorpay.payments[checkout.razorpay_payment_id]["status"] == "authorized"


def test_a_bug_in_the_fake_is_recorded_not_passed_off_as_an_outage(
    fake_razorpay: FakeRazorpay, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_clock() -> float:
        raise RuntimeError("clock broke")

    monkeypatch.setattr(fake_razorpay, "clock", broken_clock)
    with pytest.raises(requests.exceptions.JSONDecodeError):  # aiohttp's plain-text 500, not Razorpay's JSON
        new_order(sdk(fake_razorpay))
    assert [str(e) for e in fake_razorpay.internal_errors] == ["clock broke"]
    fake_razorpay.internal_errors.clear()  # otherwise the fixture fails this test
