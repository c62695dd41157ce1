"""Payment routes: start/poll a booking's checkout, the Razorpay checkout callback and both webhooks.

Webhooks are ANONYMOUS at the Functions level (the providers hold no keys of ours) and are
authenticated by their signatures over the raw body instead; a forged one is 400 problem+json.
Each verified delivery is recorded once per event id, applied to the payment rows, and the
outcome is raised on the booking's orchestration through the Durable client.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from shared import resources
from shared.config import get_settings
from shared.errors import NotFound
from shared.http.auth import ANONYMOUS, roles
from shared.http.endpoint import ApiRequest, endpoint
from shared.payments import checkout, reconcile, service, signatures, webhook_claims
from shared.payments.models import CheckoutState, PaymentView, RazorpayVerify, WebhookAck
from shared.payments.provider import ProviderRejected, ProviderUnavailable
from shared.payments.webhooks import (
    MalformedEvent,
    RefundUpdate,
    event_kind,
    razorpay_update,
    stripe_update,
    valid_event_id,
)

logger = logging.getLogger(__name__)

bp = df.Blueprint()
STUDENT = roles("student")


def _booking_id(request: ApiRequest[Any]) -> uuid.UUID:
    return uuid.UUID(request.route_params["id"])  # the route's guid constraint already checked it


def _checkout_response(state: CheckoutState) -> func.HttpResponse:
    """200 with the checkout, or 202 + Retry-After while the provider order is still being created."""
    waiting = state.checkout is None and state.booking_status == "pending_payment"
    return func.HttpResponse(
        state.model_dump_json(),
        status_code=202 if waiting else 200,
        mimetype="application/json",
        charset="utf-8",
        headers={"Retry-After": "1"} if waiting else None,
    )


@endpoint(
    bp,
    name="start_booking_payment",
    route="bookings/{id:guid}/payment",
    method="POST",
    auth=STUDENT,
    durable_client=True,
)
async def start_booking_payment(request: ApiRequest[None]) -> func.HttpResponse:
    database, settings = await resources.get_database(), get_settings()
    booking_id = _booking_id(request)
    await service.booking_for_student(database, booking_id, request.user.user_id)
    return _checkout_response(await checkout.start_checkout(request.durable, database, settings, booking_id))


@endpoint(bp, name="get_booking_payment", route="bookings/{id:guid}/payment", method="GET", auth=STUDENT)
async def get_booking_payment(request: ApiRequest[None]) -> func.HttpResponse:
    database, settings = await resources.get_database(), get_settings()
    booking_id = _booking_id(request)
    await service.booking_for_student(database, booking_id, request.user.user_id)
    return _checkout_response(await checkout.checkout_state(database, settings, booking_id))


async def _tell(client: Any, follow_up: service.FollowUp) -> None:
    """Raise the follow-up on the booking's orchestration; reconciliation covers a missed one."""
    if follow_up.event is None or follow_up.booking_id is None:
        return
    try:
        await client.raise_event(str(follow_up.booking_id), follow_up.event, {"payment": follow_up.payment_status})
    except Exception as exc:
        logger.warning("could not raise %s on %s: %s", follow_up.event, follow_up.booking_id, exc)


@endpoint(
    bp,
    name="verify_razorpay_payment",
    route="payments/razorpay/verify",
    method="POST",
    auth=STUDENT,
    body=RazorpayVerify,
    durable_client=True,
)
async def verify_razorpay_payment(request: ApiRequest[RazorpayVerify]) -> PaymentView:
    assert request.body is not None
    body = request.body
    database, settings = await resources.get_database(), get_settings()
    await service.booking_for_student(database, body.booking_id, request.user.user_id)
    payment = await service.payment_for_booking(database, body.booking_id)
    if payment is None or payment.provider != "razorpay":
        raise NotFound("this booking has no Razorpay order")
    # The order id we stored, never the client's: a signature for another order does not match.
    signatures.verify_razorpay_payment(
        settings, order_id=payment.provider_id, payment_id=body.razorpay_payment_id, signature=body.razorpay_signature
    )
    update = service.PaymentUpdate("razorpay", payment.provider_id, "pending", body.razorpay_payment_id, {})
    try:
        found = await service.make_provider("razorpay", settings).fetch(payment.provider_id)
        if found.state != "created":
            update = service.PaymentUpdate(
                "razorpay", payment.provider_id, found.state, found.provider_payment_id, found.raw
            )
    except (ProviderUnavailable, ProviderRejected) as exc:  # the signed callback still proves an authorisation
        logger.warning("could not fetch order %s after checkout: %s", payment.provider_id, exc)
    follow_up = await service.apply_payment_update(database, settings, update, now=datetime.now(UTC))
    await _tell(request.durable, follow_up)
    view = await service.outcome(database, body.booking_id)
    return PaymentView(
        booking_id=body.booking_id, booking_status=view["booking_status"], payment_status=view["payment_status"]
    )


async def _process(
    client: Any,
    provider: str,
    event_id: str,
    kind: str,
    event: dict[str, Any],
    update: service.PaymentUpdate | RefundUpdate | None,
) -> WebhookAck:
    database, settings = await resources.get_database(), get_settings()
    now = datetime.now(UTC)
    async with webhook_claims.claimed_webhook_event(
        database, settings, provider=provider, event_id=event_id, event_type=kind, payload=event, now=now
    ) as fresh:
        if not fresh:
            return WebhookAck(duplicate=True)
        if isinstance(update, service.PaymentUpdate):
            await _tell(client, await service.apply_payment_update(database, settings, update, now=now))
        elif isinstance(update, RefundUpdate):
            await service.apply_refund_update(
                database,
                provider_refund_id=update.provider_refund_id,
                idempotency_key=update.idempotency_key,
                state=update.state,
                raw=update.raw,
                now=now,
            )
    return WebhookAck()


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        event = json.loads(raw)
    except (ValueError, RecursionError):  # as in shared/http/endpoint.py: syntax, digits, depth
        raise MalformedEvent("the body is not JSON") from None
    if not isinstance(event, dict):
        raise MalformedEvent("the body is not a JSON object")
    return event


@endpoint(
    bp, name="razorpay_webhook", route="payments/razorpay/webhook", method="POST", auth=ANONYMOUS, durable_client=True
)
async def razorpay_webhook(request: ApiRequest[None]) -> WebhookAck:
    raw = request.http.get_body() or b""
    signatures.verify_razorpay_webhook(get_settings(), raw, request.http.headers.get("x-razorpay-signature"))
    event = _json_object(raw)
    # Razorpay names each event in this header; a body hash still dedupes a replay without it.
    header_id = request.http.headers.get("x-razorpay-event-id")
    event_id = valid_event_id(header_id) if header_id else "sha256:" + hashlib.sha256(raw).hexdigest()
    update = razorpay_update(event)
    return await _process(request.durable, "razorpay", event_id, event_kind(event, "event"), event, update)


@endpoint(
    bp, name="stripe_webhook", route="payments/stripe/webhook", method="POST", auth=ANONYMOUS, durable_client=True
)
async def stripe_webhook(request: ApiRequest[None]) -> WebhookAck:
    raw = request.http.get_body() or b""
    event = signatures.stripe_event(get_settings(), raw, request.http.headers.get("stripe-signature"))
    event_id = valid_event_id(event.get("id"))
    update = stripe_update(event)
    return await _process(request.durable, "stripe", event_id, event_kind(event, "type"), event, update)


@bp.timer_trigger(schedule="0 */5 * * * *", arg_name="timer", run_on_startup=False)  # type: ignore[untyped-decorator]
@bp.durable_client_input(client_name="client")  # type: ignore[untyped-decorator]
async def reconcile_payments(timer: func.TimerRequest, client: Any) -> None:
    if timer.past_due:
        logger.info("payment reconciliation is running late")
    database, cache = await resources.get_database(), await resources.get_cache()
    await reconcile.reconcile(database, cache, get_settings(), client, now=datetime.now(UTC))
