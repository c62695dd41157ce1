"""The fake Stripe, driven by the real stripe SDK over HTTP (devhost/fakes/stripe.py)."""

from __future__ import annotations

import json
import time

import pytest
import stripe

from devhost.fakes.receiver import WebhookReceiver
from devhost.fakes.stripe import API_VERSION, FakeStripe


def sdk(fake: FakeStripe, *, retries: int = 0, timeout: float = 10.0) -> stripe.StripeClient:
    return stripe.StripeClient(
        fake.api_key,
        base_addresses={"api": fake.url},
        max_network_retries=retries,
        http_client=stripe.RequestsClient(timeout=timeout),
    )


def new_intent(
    client: stripe.StripeClient, key: str | None = "booking-1-pi", amount: int = 2500
) -> stripe.PaymentIntent:
    params: stripe.PaymentIntentCreateParams = {
        "amount": amount,
        "currency": "usd",
        "metadata": {"booking_id": "booking-1"},
        "automatic_payment_methods": {"enabled": True},
    }
    return client.v1.payment_intents.create(params=params, options={"idempotency_key": key} if key else {})


def types(receiver: WebhookReceiver) -> list[str]:
    return [json.loads(r.body)["type"] for r in receiver.received]


def construct(fake: FakeStripe, body: bytes, header: str | None) -> stripe.Event:
    return stripe.Webhook.construct_event(body, header, fake.webhook_secret)


def test_the_fake_signs_events_with_the_api_version_of_the_sdk() -> None:
    assert stripe.api_version == API_VERSION


def test_a_payment_intent_is_created_from_the_sdks_form_encoding(fake_stripe: FakeStripe) -> None:
    client = sdk(fake_stripe)
    intent = new_intent(client)
    assert intent.id.startswith("pi_")
    assert intent.client_secret is not None and intent.client_secret.startswith(f"{intent.id}_secret_")
    assert (intent.object, intent.amount, intent.currency, intent.status) == (
        "payment_intent",
        2500,
        "usd",
        "requires_payment_method",
    )
    assert intent.metadata.to_dict() == {"booking_id": "booking-1"}
    assert intent.automatic_payment_methods is not None and intent.automatic_payment_methods.enabled is True
    assert client.v1.payment_intents.retrieve(intent.id).to_dict() == intent.to_dict()


def test_an_idempotency_key_replays_and_refuses_other_parameters(fake_stripe: FakeStripe) -> None:
    client = sdk(fake_stripe)
    first = new_intent(client, key="booking-2-pi")
    again = new_intent(client, key="booking-2-pi")
    assert again.id == first.id
    assert again.last_response is not None and again.last_response.headers["Idempotent-Replayed"] == "true"
    with pytest.raises(stripe.IdempotencyError, match="same parameters"):
        new_intent(client, key="booking-2-pi", amount=9900)
    with pytest.raises(stripe.IdempotencyError, match="same endpoint"):
        client.v1.refunds.create(params={"payment_intent": first.id}, options={"idempotency_key": "booking-2-pi"})
    fake_stripe.succeed(first.id)
    replayed = new_intent(client, key="booking-2-pi")
    assert (replayed.id, replayed.status) == (first.id, "requires_payment_method")  # the first answer, as saved
    assert new_intent(client, key="booking-3-pi").id != first.id
    assert new_intent(client, key=None).id != first.id  # the SDK's own random key
    assert len(fake_stripe.payment_intents) == 3


def test_invalid_requests_raise_the_sdks_exceptions(fake_stripe: FakeStripe) -> None:
    client = sdk(fake_stripe)
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.payment_intents.create(params={"amount": 2500, "currency": "usd", "confirm_soon": True})  # type: ignore[typeddict-unknown-key]
    assert (unknown.value.code, unknown.value.param) == ("parameter_unknown", "confirm_soon")
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.payment_intents.create(params={"currency": "usd"})  # type: ignore[typeddict-item]
    assert (missing.value.code, missing.value.param) == ("parameter_missing", "amount")
    with pytest.raises(stripe.InvalidRequestError) as small:
        client.v1.payment_intents.create(params={"amount": 10, "currency": "usd"})
    assert small.value.code == "amount_too_small"
    with pytest.raises(stripe.InvalidRequestError) as not_found:
        client.v1.payment_intents.retrieve("pi_missing")
    assert (not_found.value.http_status, not_found.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient("sk_test_wrong", base_addresses={"api": fake_stripe.url}).v1.payment_intents.retrieve(
            "pi_x"
        )


def test_an_intent_is_updated_and_cancelled_with_an_event(
    fake_stripe: FakeStripe, webhook_receiver: WebhookReceiver
) -> None:
    fake_stripe.set_webhook_url(webhook_receiver.url)
    client = sdk(fake_stripe)
    intent = new_intent(client)
    updated = client.v1.payment_intents.update(intent.id, params={"amount": 3000, "metadata": {"slot": "9am"}})
    assert (updated.amount, updated.metadata.to_dict()) == (3000, {"booking_id": "booking-1", "slot": "9am"})
    cancelled = client.v1.payment_intents.cancel(intent.id, params={"cancellation_reason": "abandoned"})
    assert (cancelled.status, cancelled.cancellation_reason) == ("canceled", "abandoned")
    fake_stripe.wait_for_webhooks()
    assert types(webhook_receiver) == ["payment_intent.canceled"]
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.payment_intents.cancel(intent.id)
    assert again.value.code == "payment_intent_unexpected_state"


def test_success_is_delivered_as_events_that_verify_with_the_sdk(
    fake_stripe: FakeStripe, webhook_receiver: WebhookReceiver
) -> None:
    fake_stripe.set_webhook_url(f"{webhook_receiver.url}/api/payments/stripe/webhook")
    client = sdk(fake_stripe)
    intent = new_intent(client)
    fake_stripe.succeed(intent.id)

    assert types(webhook_receiver) == ["charge.succeeded", "payment_intent.succeeded"]
    received = webhook_receiver.received[1]
    assert received.path == "/api/payments/stripe/webhook"
    event = construct(fake_stripe, received.body, received.headers["Stripe-Signature"])
    assert (event.type, event.data.object["id"], event.data.object["status"]) == (
        "payment_intent.succeeded",
        intent.id,
        "succeeded",
    )
    assert event.id.startswith("evt_")
    with pytest.raises(stripe.SignatureVerificationError):
        construct(fake_stripe, received.body.replace(b"succeeded", b"failed"), received.headers["Stripe-Signature"])
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(received.body, received.headers["Stripe-Signature"], "whsec_other")
    retrieved = client.v1.payment_intents.retrieve(intent.id)
    assert (retrieved.status, retrieved.amount_received) == ("succeeded", 2500)
    assert retrieved.latest_charge is not None
    charge = client.v1.charges.retrieve(str(retrieved.latest_charge))
    assert (charge.paid, charge.payment_intent) == (True, intent.id)


@pytest.mark.parametrize("mode", ["stale", "wrong_secret", "missing"])
def test_signature_switches_make_the_sdk_reject_the_event(
    fake_stripe: FakeStripe, webhook_receiver: WebhookReceiver, mode: str
) -> None:
    fake_stripe.set_webhook_url(webhook_receiver.url)
    fake_stripe.webhook_signing = mode  # type: ignore[assignment]
    fake_stripe.succeed(new_intent(sdk(fake_stripe)).id)
    received = webhook_receiver.received[-1]
    with pytest.raises(stripe.SignatureVerificationError):
        construct(fake_stripe, received.body, received.headers.get("Stripe-Signature"))
    if mode == "stale":  # the signature itself is right: only the timestamp is too old
        header = received.headers["Stripe-Signature"]
        assert int(header.split(",")[0].removeprefix("t=")) < time.time() - 300
        stripe.WebhookSignature.verify_header(received.body, header, fake_stripe.webhook_secret, tolerance=None)


def test_a_declined_payment_can_succeed_on_a_second_attempt(
    fake_stripe: FakeStripe, webhook_receiver: WebhookReceiver
) -> None:
    fake_stripe.set_webhook_url(webhook_receiver.url)
    client = sdk(fake_stripe)
    intent = new_intent(client)
    failed = fake_stripe.fail(intent.id, "insufficient_funds")
    assert failed["status"] == "requires_payment_method"
    assert failed["last_payment_error"]["decline_code"] == "insufficient_funds"
    fake_stripe.succeed(intent.id)
    assert types(webhook_receiver) == [
        "charge.failed",
        "payment_intent.payment_failed",
        "charge.succeeded",
        "payment_intent.succeeded",
    ]
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"


def test_server_side_confirmation_with_test_payment_methods(fake_stripe: FakeStripe) -> None:
    client = sdk(fake_stripe)
    declined = new_intent(client, key="declined")
    with pytest.raises(stripe.CardError) as card_error:
        client.v1.payment_intents.confirm(declined.id, params={"payment_method": "pm_card_chargeDeclined"})
    assert card_error.value.code == "card_declined"
    paid = client.v1.payment_intents.confirm(declined.id, params={"payment_method": "pm_card_visa"})
    assert paid.status == "succeeded"


def test_refunds_are_idempotent_bounded_and_reported(
    fake_stripe: FakeStripe, webhook_receiver: WebhookReceiver
) -> None:
    client = sdk(fake_stripe)
    intent = new_intent(client)
    with pytest.raises(stripe.InvalidRequestError, match="does not have a successful charge"):
        client.v1.refunds.create(params={"payment_intent": intent.id})
    fake_stripe.succeed(intent.id)
    fake_stripe.set_webhook_url(webhook_receiver.url)

    options: stripe.RequestOptions = {"idempotency_key": "booking-1-refund"}
    refund = client.v1.refunds.create(
        params={"payment_intent": intent.id, "amount": 1000, "metadata": {"booking_id": "booking-1"}}, options=options
    )
    assert refund.id.startswith("re_")
    assert (refund.amount, refund.status, refund.payment_intent) == (1000, "succeeded", intent.id)
    replay = client.v1.refunds.create(
        params={"payment_intent": intent.id, "amount": 1000, "metadata": {"booking_id": "booking-1"}}, options=options
    )
    assert replay.id == refund.id
    with pytest.raises(stripe.InvalidRequestError, match="greater than unrefunded amount"):
        client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 2000})
    rest = client.v1.refunds.create(params={"payment_intent": intent.id})
    assert rest.amount == 1500
    with pytest.raises(stripe.InvalidRequestError) as twice:
        client.v1.refunds.create(params={"payment_intent": intent.id})
    assert twice.value.code == "charge_already_refunded"
    assert client.v1.refunds.retrieve(refund.id).to_dict() == refund.to_dict()

    fake_stripe.wait_for_webhooks()
    assert types(webhook_receiver) == ["refund.created", "charge.refunded", "refund.created", "charge.refunded"]
    last_charge = json.loads(webhook_receiver.received[-1].body)["data"]["object"]
    assert (last_charge["amount_refunded"], last_charge["refunded"]) == (2500, True)


def test_a_pending_refund_is_settled_by_a_control(fake_stripe: FakeStripe, webhook_receiver: WebhookReceiver) -> None:
    client = sdk(fake_stripe)
    intent = new_intent(client)
    fake_stripe.succeed(intent.id)
    fake_stripe.refund_outcome = "pending"
    refund = client.v1.refunds.create(params={"payment_intent": intent.id})
    assert refund.status == "pending"
    fake_stripe.wait_for_webhooks()
    fake_stripe.set_webhook_url(webhook_receiver.url)

    fake_stripe.settle_refund(refund.id, "failed")
    assert client.v1.refunds.retrieve(refund.id).status == "failed"
    assert types(webhook_receiver) == ["refund.failed", "refund.updated"]
    updated = json.loads(webhook_receiver.received[-1].body)["data"]
    assert updated["previous_attributes"] == {"status": "pending"}
    assert client.v1.refunds.create(params={"payment_intent": intent.id}).amount == 2500


def test_injected_5xx_reach_the_sdk_and_its_retries_reuse_the_key(fake_stripe: FakeStripe) -> None:
    fake_stripe.faults.fail_next("POST /v1/payment_intents")
    with pytest.raises(stripe.APIError) as error:
        new_intent(sdk(fake_stripe))
    assert error.value.http_status == 500
    assert fake_stripe.payment_intents == {}

    fake_stripe.faults.fail_next("POST /v1/payment_intents", status=503)
    intent = new_intent(sdk(fake_stripe, retries=1), key=None)
    keys = [r.headers["Idempotency-Key"] for r in fake_stripe.requests if r.route == "POST /v1/payment_intents"]
    assert len(keys) == 3 and keys[1] == keys[2]  # the SDK retried with its own key
    assert list(fake_stripe.payment_intents) == [intent.id]


def test_a_hang_times_the_sdk_out_and_the_retry_replays_the_intent(fake_stripe: FakeStripe) -> None:
    fake_stripe.faults.hang_next("POST /v1/payment_intents", seconds=2.0)
    with pytest.raises(stripe.APIConnectionError):
        new_intent(sdk(fake_stripe, timeout=0.2), key="booking-4-pi")
    fake_stripe.wait_for_requests()
    assert len(fake_stripe.payment_intents) == 1  # it happened although the client gave up
    retried = new_intent(sdk(fake_stripe), key="booking-4-pi")
    assert list(fake_stripe.payment_intents) == [retried.id]


def test_duplicates_and_reordering_are_switches(fake_stripe: FakeStripe, webhook_receiver: WebhookReceiver) -> None:
    fake_stripe.set_webhook_url(webhook_receiver.url)
    client = sdk(fake_stripe)
    fake_stripe.set_webhook_duplicates(1)
    fake_stripe.succeed(new_intent(client, key="a").id)
    ids = [json.loads(r.body)["id"] for r in webhook_receiver.received]
    assert len(ids) == 4 and ids[0::2] == ids[1::2]
    signatures = [r.headers["Stripe-Signature"] for r in webhook_receiver.received]
    assert all(construct(fake_stripe, r.body, s) for r, s in zip(webhook_receiver.received, signatures, strict=True))

    fake_stripe.set_webhook_duplicates(0)
    fake_stripe.hold_webhooks()
    intent = new_intent(client, key="b")
    fake_stripe.fail(intent.id)
    fake_stripe.succeed(intent.id)
    assert len(webhook_receiver.received) == 4
    fake_stripe.release_webhooks("reverse")
    assert types(webhook_receiver)[4:] == [
        "payment_intent.succeeded",
        "charge.succeeded",
        "payment_intent.payment_failed",
        "charge.failed",
    ]


def test_redelivery_after_a_failing_endpoint(fake_stripe: FakeStripe, webhook_receiver: WebhookReceiver) -> None:
    fake_stripe.set_webhook_url(webhook_receiver.url)
    webhook_receiver.status = 500
    fake_stripe.succeed(new_intent(sdk(fake_stripe)).id)
    assert [d.status for d in fake_stripe.deliveries] == [500, 500]
    webhook_receiver.status = 200
    event_id = fake_stripe.deliveries[-1].event_id
    assert fake_stripe.redeliver(event_id).status == 200
    assert json.loads(webhook_receiver.received[-1].body)["id"] == event_id


def test_events_caused_by_an_api_call_name_its_request(
    fake_stripe: FakeStripe, webhook_receiver: WebhookReceiver
) -> None:
    fake_stripe.set_webhook_url(webhook_receiver.url)
    client = sdk(fake_stripe)
    intent = new_intent(client)
    cancelled = client.v1.payment_intents.cancel(intent.id, options={"idempotency_key": "booking-1-cancel"})
    fake_stripe.wait_for_webhooks()
    event = json.loads(webhook_receiver.received[-1].body)
    assert cancelled.last_response is not None
    assert event["request"] == {"id": cancelled.last_response.request_id, "idempotency_key": "booking-1-cancel"}
    assert str(cancelled.last_response.request_id).startswith("req_")


def test_refunds_are_listed_per_payment_intent(fake_stripe: FakeStripe) -> None:
    client = sdk(fake_stripe)
    paid = [new_intent(client, key=f"pi-{n}") for n in range(2)]
    for intent in paid:
        fake_stripe.succeed(intent.id)
    first = client.v1.refunds.create(params={"payment_intent": paid[0].id, "amount": 500})
    second = client.v1.refunds.create(params={"payment_intent": paid[0].id, "amount": 700})
    client.v1.refunds.create(params={"payment_intent": paid[1].id})
    listed = client.v1.refunds.list(params={"payment_intent": paid[0].id})
    assert [r.id for r in listed.data] == [second.id, first.id]
    assert listed.has_more is False


def test_reset_forgets_intents_and_idempotency_keys(fake_stripe: FakeStripe) -> None:
    client = sdk(fake_stripe)
    before = new_intent(client, key="reused")
    fake_stripe.webhook_signing = "stale"
    fake_stripe.reset()
    assert (fake_stripe.payment_intents, fake_stripe.webhook_signing) == ({}, "valid")
    assert new_intent(client, key="reused").id != before.id


async def test_the_async_sdk_and_async_controls_work_from_an_async_test(fake_stripe: FakeStripe) -> None:
    http_client = stripe.AIOHTTPClient()
    client = stripe.StripeClient(fake_stripe.api_key, base_addresses={"api": fake_stripe.url}, http_client=http_client)
    try:
        intent = await client.v1.payment_intents.create_async(
            params={"amount": 1000, "currency": "inr", "metadata": {"booking_id": "b-async"}}
        )
        await fake_stripe.acall(fake_stripe.succeed_async(intent.id))
        retrieved = await client.v1.payment_intents.retrieve_async(intent.id)
        assert (retrieved.status, retrieved.metadata.to_dict()) == ("succeeded", {"booking_id": "b-async"})
    finally:
        await http_client.close_async()
