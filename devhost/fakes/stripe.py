"""A fake Stripe API (api.stripe.com shape) for the real `stripe` SDK, plus test controls.

    with FakeStripe(webhook_url=receiver) as fake:
        client = stripe.StripeClient(fake.api_key, base_addresses={"api": fake.url})
        intent = client.v1.payment_intents.create(
            params={"amount": 2500, "currency": "usd"}, options={"idempotency_key": "booking-1-pi"}
        )
        fake.succeed(intent.id)                   # payment_intent.succeeded (+ charge.succeeded) sent

API: Bearer (or basic) auth with the secret key; form-encoded requests; PaymentIntents (create,
retrieve, update, confirm, cancel), refunds (create, retrieve), charges (retrieve). Unknown
parameters are refused like Stripe does. Errors as `{"error": {"type": "invalid_request_error",
"code": ..., "message": ..., "param": ...}}`, so the SDK raises its own exception classes.

Idempotency like Stripe's: a POST's `Idempotency-Key` (the SDK sends a random one on every POST,
and reuses it for its own retries) saves the first answer (2xx and card errors); the same key
replays it with `Idempotent-Replayed: true`; other parameters or another endpoint answer
`idempotency_error`. Validation errors and injected faults are not saved.

Webhooks: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(webhook secret, f"{t}.{raw body}")>`.

Run alone: `python -m devhost.fakes.stripe --port 8402` (see devhost/fakes/README.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from devhost.fakes import process
from devhost.fakes.base import FakeProvider, ProviderError, json_response
from devhost.fakes.ids import random_id
from devhost.fakes.stripe_params import (
    Entity,
    Params,
    allow,
    amount_param,
    boolean_param,
    currency_param,
    idempotency_error,
    invalid,
    metadata_param,
    missing,
    read_params,
    required,
    unexpected_state,
)
from devhost.fakes.webhooks import OutgoingEvent

RefundOutcome = Literal["succeeded", "pending"]
SigningMode = Literal["valid", "stale", "wrong_secret", "missing"]

DEFAULT_API_KEY = "sk_test_fake_0000000000000000"
DEFAULT_PUBLISHABLE_KEY = "pk_test_fake_0000000000000000"
DEFAULT_WEBHOOK_SECRET = "whsec_fake_0000000000000000"  # noqa: S105 - a local fake's test credential
# The API version stripe-python 16.1.0 pins (stripe._api_version._ApiVersion.CURRENT).
API_VERSION = "2026-10-28.endive"
STALE_SIGNATURE_AGE_S = 3600  # far past the SDK's default tolerance of 300 s
CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing")
UPDATABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
# The API request being handled, named in the events it causes (Event.request), like Stripe does.
_api_request: ContextVar[dict[str, str | None] | None] = ContextVar("stripe_api_request", default=None)
REQUEST_ID = web.RequestKey("request_id", str)
DECLINING_METHODS = {"pm_card_chargeDeclined": "generic_decline", "pm_card_visa_chargeDeclined": "generic_decline"}


def signature_header(body: bytes, secret: str, timestamp: int) -> str:
    """Stripe-Signature for `body` signed at `timestamp`."""
    signed = f"{timestamp}.".encode() + body
    return f"t={timestamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


@dataclass(frozen=True)
class Saved:
    method: str
    path: str
    params: Params
    status: int
    body: Mapping[str, Any]


class FakeStripe(FakeProvider):
    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        publishable_key: str = DEFAULT_PUBLISHABLE_KEY,
        webhook_url: str | None = None,
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(port=port, webhook_url=webhook_url)
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.publishable_key = publishable_key
        self.clock = clock
        self.reset_state()

    def reset_state(self) -> None:
        self.payment_intents: dict[str, Entity] = {}
        self.charges: dict[str, Entity] = {}
        self.refunds: dict[str, Entity] = {}
        self._saved: dict[str, Saved] = {}
        self.refund_outcome: RefundOutcome = "succeeded"
        self.webhook_signing: SigningMode = "valid"

    def app_env(self) -> dict[str, str]:
        return {
            "STRIPE_API_BASE_URL": self.url,
            "TESTING_STRIPE_SECRET_KEY": self.api_key,
            "TESTING_VITE_STRIPE_PUBLIC_KEY": self.publishable_key,
            "STRIPE_WEBHOOK_SECRET": self.webhook_secret,
        }

    # --- provider hooks -------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/payment_intents", self._idempotent(self._create_intent))
        app.router.add_get("/v1/payment_intents/{id}", self._retrieve_intent)
        app.router.add_post("/v1/payment_intents/{id}", self._idempotent(self._update_intent))
        app.router.add_post("/v1/payment_intents/{id}/confirm", self._idempotent(self._confirm_intent))
        app.router.add_post("/v1/payment_intents/{id}/cancel", self._idempotent(self._cancel_intent))
        app.router.add_get("/v1/charges/{id}", self._retrieve_charge)
        app.router.add_post("/v1/refunds", self._idempotent(self._create_refund))
        app.router.add_get("/v1/refunds", self._list_refunds)
        app.router.add_get("/v1/refunds/{id}", self._retrieve_refund)
        app.router.add_post("/__control/payment_intents/{id}/{action:succeed|fail|process}", self._control_intent)
        app.router.add_post("/__control/refunds/{id}/settle", self._control_settle_refund)
        self.add_control_routes(app)
        app.on_response_prepare.append(self._add_request_id)

    async def _add_request_id(self, request: web.Request, response: web.StreamResponse) -> None:
        if not request.path.startswith("/__control"):
            response.headers.setdefault("Request-Id", request.get(REQUEST_ID) or random_id("req_", 14))

    def authenticate(self, request: web.Request) -> None:
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                credential = base64.b64decode(credential, validate=True).decode().partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                credential = ""
        elif scheme.lower() != "bearer":
            credential = ""
        if not credential:
            raise invalid(
                "You did not provide an API key. You need to provide your API key in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
                status=401,
            )
        if not hmac.compare_digest(credential, self.api_key):
            raise invalid(f"Invalid API Key provided: {credential[:8]}****{credential[-4:]}", status=401)

    def server_error(self, status: int) -> ProviderError:
        return ProviderError(status, {"error": {"type": "api_error", "message": "An unknown error occurred"}})

    def unknown_route(self) -> ProviderError:
        return invalid("Unrecognized request URL. Please see https://stripe.com/docs.", status=404)

    def sign_webhook(self, event: OutgoingEvent) -> Mapping[str, str]:
        headers = {"User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"}
        now = int(self.clock())
        if self.webhook_signing == "valid":
            headers["Stripe-Signature"] = signature_header(event.body, self.webhook_secret, now)
        elif self.webhook_signing == "stale":
            headers["Stripe-Signature"] = signature_header(event.body, self.webhook_secret, now - STALE_SIGNATURE_AGE_S)
        elif self.webhook_signing == "wrong_secret":
            headers["Stripe-Signature"] = signature_header(event.body, self.webhook_secret + "_wrong", now)
        return headers

    # --- idempotency ----------------------------------------------------------------------------

    def _idempotent(
        self, handler: Callable[[web.Request, Params], Awaitable[Entity]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def wrapped(request: web.Request) -> web.Response:
            params = await read_params(request)
            key = request.headers.get("Idempotency-Key")
            request[REQUEST_ID] = random_id("req_", 14)
            _api_request.set({"id": request[REQUEST_ID], "idempotency_key": key})
            if key:
                saved = self._saved.get(key)
                if saved is not None:
                    return self._replay(saved, key, request, params)
            try:
                body = await handler(request, params)
                status = 200
            except ProviderError as exc:
                if exc.status != 402:  # validation and state errors are not saved
                    raise
                body, status = dict(exc.body), exc.status
            if key:  # a snapshot: Stripe replays the first answer, not the object's current state
                snapshot = json.loads(json.dumps(body))
                self._saved[key] = Saved(request.method, request.path, params, status, snapshot)
            return json_response(body, status=status)

        return wrapped

    def _replay(self, saved: Saved, key: str, request: web.Request, params: Params) -> web.Response:
        if (saved.method, saved.path) != (request.method, request.path):
            raise ProviderError(
                400,
                idempotency_error(
                    f"Keys for idempotent requests can only be used for the same endpoint they were first used for "
                    f"('{saved.path}' vs '{request.path}'). Try using a key other than '{key}' if you meant to "
                    "execute a different request."
                ),
            )
        if saved.params != params:
            raise ProviderError(
                400,
                idempotency_error(
                    "Keys for idempotent requests can only be used with the same parameters they were first used "
                    f"with. Try using a key other than '{key}' if you meant to execute a different request."
                ),
            )
        return json_response(saved.body, status=saved.status, headers={"Idempotent-Replayed": "true"})

    # --- PaymentIntents -------------------------------------------------------------------------

    async def _create_intent(self, _request: web.Request, params: Params) -> Entity:
        allow(
            params,
            {
                "amount",
                "currency",
                "metadata",
                "automatic_payment_methods",
                "payment_method_types",
                "description",
                "receipt_email",
                "capture_method",
                "statement_descriptor_suffix",
                "expand",
            },
        )
        currency = currency_param(required(params, "currency"))
        amount = amount_param(required(params, "amount"), currency)
        automatic = params.get("automatic_payment_methods")
        if automatic is not None and not isinstance(automatic, dict):
            raise invalid("Invalid object", param="automatic_payment_methods")
        automatic_enabled = automatic is not None and boolean_param(
            automatic.get("enabled"), "automatic_payment_methods"
        )
        methods = params.get("payment_method_types", ["card"])
        if not isinstance(methods, list) or not methods:
            raise invalid("Invalid array", param="payment_method_types")
        intent_id = random_id("pi_", 24)
        intent: Entity = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_details": {"tip": {}},
            "amount_received": 0,
            "application": None,
            "application_fee_amount": None,
            "automatic_payment_methods": {"allow_redirects": "always", "enabled": True} if automatic_enabled else None,
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": params.get("capture_method", "automatic_async"),
            "client_secret": f"{intent_id}_secret_{random_id('', 25)}",
            "confirmation_method": "automatic",
            "created": int(self.clock()),
            "currency": currency,
            "customer": None,
            "description": params.get("description"),
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": metadata_param(params.get("metadata"), {}),
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": None,
            "payment_method_options": {},
            "payment_method_types": methods,
            "processing": None,
            "receipt_email": params.get("receipt_email"),
            "review": None,
            "setup_future_usage": None,
            "shipping": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": params.get("statement_descriptor_suffix"),
            "status": "requires_payment_method",
            "transfer_data": None,
            "transfer_group": None,
        }
        self.payment_intents[intent_id] = intent
        return intent

    async def _retrieve_intent(self, request: web.Request) -> web.Response:
        return json_response(self._intent(request.match_info["id"]))

    async def _update_intent(self, request: web.Request, params: Params) -> Entity:
        intent = self._intent(request.match_info["id"])
        allow(params, {"amount", "currency", "metadata", "description", "receipt_email", "expand"})
        changes = {k: v for k, v in params.items() if k in ("amount", "currency", "description", "receipt_email")}
        if changes and intent["status"] not in UPDATABLE:
            raise unexpected_state(
                f"This PaymentIntent could not be updated because it has a status of {intent['status']}. You may "
                f"only update a PaymentIntent with one of the following statuses: {', '.join(UPDATABLE)}."
            )
        if "currency" in changes:
            changes["currency"] = currency_param(changes["currency"])
        if "amount" in changes:
            changes["amount"] = amount_param(changes["amount"], str(changes.get("currency", intent["currency"])))
        intent.update(changes)
        if "metadata" in params:
            intent["metadata"] = metadata_param(params["metadata"], intent["metadata"])
        return intent

    async def _confirm_intent(self, request: web.Request, params: Params) -> Entity:
        """Server-side confirmation with a test PaymentMethod (pm_card_visa, pm_card_chargeDeclined)."""
        intent = self._intent(request.match_info["id"])
        allow(params, {"payment_method", "return_url", "expand"})
        if intent["status"] not in ("requires_payment_method", "requires_confirmation"):
            raise unexpected_state(
                f"This PaymentIntent's status is {intent['status']}, but it must be requires_payment_method or "
                "requires_confirmation to be confirmed."
            )
        method = params.get("payment_method", intent["payment_method"])
        if not method:
            raise invalid("You must provide a payment method to confirm this PaymentIntent.", param="payment_method")
        decline = DECLINING_METHODS.get(method)
        if decline is not None:
            events = self._fail(intent, decline, method)
            self.webhooks.send_soon(events)
            raise ProviderError(402, {"error": intent["last_payment_error"]})
        self.webhooks.send_soon(self._succeed(intent, method))
        return intent

    async def _cancel_intent(self, request: web.Request, params: Params) -> Entity:
        intent = self._intent(request.match_info["id"])
        allow(params, {"cancellation_reason", "expand"})
        reason = params.get("cancellation_reason")
        if reason not in (None, "duplicate", "fraudulent", "requested_by_customer", "abandoned"):
            raise invalid(f"Invalid cancellation_reason: {reason}", param="cancellation_reason")
        if intent["status"] not in CANCELABLE:
            raise unexpected_state(
                f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}. Only a "
                f"PaymentIntent with one of the following statuses may be canceled: {', '.join(CANCELABLE)}."
            )
        intent.update(status="canceled", canceled_at=int(self.clock()), cancellation_reason=reason)
        self.webhooks.send_soon([self._event("payment_intent.canceled", intent)])
        return intent

    def _intent(self, intent_id: str) -> Entity:
        intent = self.payment_intents.get(intent_id)
        if intent is None:
            raise missing("payment_intent", intent_id, "intent")
        return intent

    # --- charges and refunds --------------------------------------------------------------------

    async def _retrieve_charge(self, request: web.Request) -> web.Response:
        charge = self.charges.get(request.match_info["id"])
        if charge is None:
            raise missing("charge", request.match_info["id"], "id")
        return json_response(charge)

    async def _create_refund(self, _request: web.Request, params: Params) -> Entity:
        allow(params, {"payment_intent", "charge", "amount", "metadata", "reason", "expand"})
        charge = self._refundable_charge(params)
        remaining = charge["amount_captured"] - charge["amount_refunded"]
        if remaining <= 0:
            raise invalid(f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded")
        amount = amount_param(params["amount"], charge["currency"], minimum=1) if "amount" in params else remaining
        if amount > remaining:
            raise invalid(
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})", param="amount"
            )
        reason = params.get("reason")
        if reason not in (None, "duplicate", "fraudulent", "requested_by_customer"):
            raise invalid(f"Invalid reason: {reason}", param="reason")
        refund: Entity = {
            "id": random_id("re_", 24),
            "object": "refund",
            "amount": amount,
            "balance_transaction": random_id("txn_", 24),
            "charge": charge["id"],
            "created": int(self.clock()),
            "currency": charge["currency"],
            "destination_details": None,
            "failure_reason": None,
            "metadata": metadata_param(params.get("metadata"), {}),
            "payment_intent": charge["payment_intent"],
            "reason": reason,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": "pending",
            "transfer_reversal": None,
        }
        self.refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
        events = [self._event("refund.created", refund), self._event("charge.refunded", charge)]
        if self.refund_outcome == "succeeded":
            refund["status"] = "succeeded"
            events[0] = self._event("refund.created", refund)
        self.webhooks.send_soon(events)
        return refund

    def _refundable_charge(self, params: Params) -> Entity:
        if "charge" in params:
            charge = self.charges.get(params["charge"])
            if charge is None:
                raise missing("charge", params["charge"], "charge")
        elif "payment_intent" in params:
            intent = self._intent(params["payment_intent"])
            if intent["status"] != "succeeded" or intent["latest_charge"] is None:
                raise invalid(
                    f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.",
                    param="payment_intent",
                )
            charge = self.charges[intent["latest_charge"]]
        else:
            raise invalid("One of the following params should be provided for this request: payment_intent or charge.")
        return charge

    async def _list_refunds(self, request: web.Request) -> web.Response:
        """GET /v1/refunds?payment_intent=...|charge=...&limit=n, newest first."""
        params = await read_params(request)
        allow(params, {"payment_intent", "charge", "limit", "expand"})
        limit = params.get("limit", "10")
        if not str(limit).isdigit() or not 1 <= int(limit) <= 100:
            raise invalid("limit must be an integer between 1 and 100", param="limit")
        limit = int(limit)
        matching = [
            r
            for r in reversed(self.refunds.values())
            if all(r[k] == params[k] for k in ("payment_intent", "charge") if k in params)
        ]
        return json_response(
            {"object": "list", "data": matching[:limit], "has_more": len(matching) > limit, "url": "/v1/refunds"}
        )

    async def _retrieve_refund(self, request: web.Request) -> web.Response:
        refund = self.refunds.get(request.match_info["id"])
        if refund is None:
            raise missing("refund", request.match_info["id"], "id")
        return json_response(refund)

    # --- state changes that a real payer / bank would cause ------------------------------------

    def _charge(self, intent: Entity, method: str, *, paid: bool) -> Entity:
        charge: Entity = {
            "id": random_id("ch_", 24),
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": intent["amount"] if paid else 0,
            "amount_refunded": 0,
            "balance_transaction": random_id("txn_", 24) if paid else None,
            "captured": paid,
            "created": int(self.clock()),
            "currency": intent["currency"],
            "failure_code": None,
            "failure_message": None,
            "livemode": False,
            "metadata": dict(intent["metadata"]),
            "paid": paid,
            "payment_intent": intent["id"],
            "payment_method": method,
            "refunded": False,
            "status": "succeeded" if paid else "failed",
        }
        self.charges[charge["id"]] = charge
        intent["latest_charge"] = charge["id"]
        return charge

    def _succeed(self, intent: Entity, method: str = "pm_card_visa") -> list[OutgoingEvent]:
        if intent["status"] in ("succeeded", "canceled"):
            raise ValueError(f"payment intent {intent['id']} is already {intent['status']}")
        charge = self._charge(intent, method, paid=True)
        intent.update(
            status="succeeded", amount_received=intent["amount"], payment_method=method, last_payment_error=None
        )
        return [self._event("charge.succeeded", charge), self._event("payment_intent.succeeded", intent)]

    def _fail(self, intent: Entity, decline_code: str, method: str = "pm_card_chargeDeclined") -> list[OutgoingEvent]:
        if intent["status"] in ("succeeded", "canceled"):
            raise ValueError(f"payment intent {intent['id']} is already {intent['status']}")
        charge = self._charge(intent, method, paid=False)
        charge.update(failure_code="card_declined", failure_message="Your card was declined.")
        intent.update(
            status="requires_payment_method",
            payment_method=None,
            last_payment_error={
                "type": "card_error",
                "code": "card_declined",
                "decline_code": decline_code,
                "message": "Your card was declined.",
                "charge": charge["id"],
                "payment_method": {"id": method, "object": "payment_method", "type": "card"},
                "doc_url": "https://stripe.com/docs/error-codes/card-declined",
            },
        )
        return [self._event("charge.failed", charge), self._event("payment_intent.payment_failed", intent)]

    def _process(self, intent: Entity) -> list[OutgoingEvent]:
        if intent["status"] not in UPDATABLE:
            raise ValueError(f"payment intent {intent['id']} is {intent['status']}")
        intent.update(status="processing", payment_method="pm_usBankAccount_processing")
        return [self._event("payment_intent.processing", intent)]

    def _settle_refund(self, refund: Entity, status: Literal["succeeded", "failed"]) -> list[OutgoingEvent]:
        previous = {"status": refund["status"]}
        refund["status"] = status
        events = []
        if status == "failed":
            refund["failure_reason"] = "expired_or_canceled_card"
            charge = self.charges[refund["charge"]]
            charge["amount_refunded"] -= refund["amount"]
            charge["refunded"] = False
            events.append(self._event("refund.failed", refund))
        events.append(self._event("refund.updated", refund, previous))
        return events

    def _event(self, name: str, obj: Entity, previous: Entity | None = None) -> OutgoingEvent:
        data: Entity = {"object": json.loads(json.dumps(obj))}
        if previous is not None:
            data["previous_attributes"] = previous
        event_id = random_id("evt_", 24)
        body = {
            "id": event_id,
            "object": "event",
            "api_version": API_VERSION,
            "created": int(self.clock()),
            "data": data,
            "livemode": False,
            "pending_webhooks": 1,
            "request": _api_request.get() or {"id": None, "idempotency_key": None},
            "type": name,
        }
        return OutgoingEvent(event_id, name, json.dumps(body).encode())

    # --- test controls --------------------------------------------------------------------------

    def succeed(self, intent_id: str) -> Entity:
        """The payer confirms and the payment succeeds; charge.succeeded and payment_intent.succeeded are sent."""
        return self.call(self.succeed_async(intent_id))

    async def succeed_async(self, intent_id: str) -> Entity:
        intent = self.payment_intents[intent_id]
        await self.webhooks.send(self._succeed(intent))
        return dict(intent)

    def fail(self, intent_id: str, decline_code: str = "generic_decline") -> Entity:
        """The payer's card is declined: payment_intent.payment_failed; the intent may be paid again."""
        return self.call(self.fail_async(intent_id, decline_code))

    async def fail_async(self, intent_id: str, decline_code: str = "generic_decline") -> Entity:
        intent = self.payment_intents[intent_id]
        await self.webhooks.send(self._fail(intent, decline_code))
        return dict(intent)

    def process(self, intent_id: str) -> Entity:
        """The payer confirmed with a delayed method: status processing until `succeed` or `fail`."""
        return self.call(self.process_async(intent_id))

    async def process_async(self, intent_id: str) -> Entity:
        intent = self.payment_intents[intent_id]
        await self.webhooks.send(self._process(intent))
        return dict(intent)

    def settle_refund(self, refund_id: str, status: Literal["succeeded", "failed"] = "succeeded") -> Entity:
        """Finish a pending refund (refund_outcome = "pending"): refund.updated (and refund.failed)."""
        return self.call(self.settle_refund_async(refund_id, status))

    async def settle_refund_async(self, refund_id: str, status: Literal["succeeded", "failed"]) -> Entity:
        refund = self.refunds[refund_id]
        if refund["status"] != "pending":
            raise ValueError(f"refund {refund_id} is {refund['status']}, not pending")
        await self.webhooks.send(self._settle_refund(refund, status))
        return dict(refund)

    async def _control_intent(self, request: web.Request) -> web.Response:
        intent_id, action = request.match_info["id"], request.match_info["action"]
        if intent_id not in self.payment_intents:
            raise missing("payment_intent", intent_id, "intent")
        if action == "succeed":
            return json_response(await self.succeed_async(intent_id))
        if action == "fail":
            return json_response(await self.fail_async(intent_id))
        return json_response(await self.process_async(intent_id))

    async def _control_settle_refund(self, request: web.Request) -> web.Response:
        payload = await request.json() if request.can_read_body else {}
        refund_id = request.match_info["id"]
        if refund_id not in self.refunds:
            raise missing("refund", refund_id, "id")
        return json_response(await self.settle_refund_async(refund_id, payload.get("status", "succeeded")))


def main(argv: list[str] | None = None) -> int:
    parser = process.arguments("A fake Stripe API on 127.0.0.1 for local runs and tests.")
    parser.add_argument("--api-key", default=os.environ.get("TESTING_STRIPE_SECRET_KEY") or DEFAULT_API_KEY)
    parser.add_argument("--webhook-secret", default=os.environ.get("STRIPE_WEBHOOK_SECRET") or DEFAULT_WEBHOOK_SECRET)
    args = parser.parse_args(argv)
    fake = FakeStripe(
        api_key=args.api_key, webhook_secret=args.webhook_secret, webhook_url=args.webhook_url, port=args.port
    )
    return process.run_until_signalled(fake, "stripe")


if __name__ == "__main__":
    raise SystemExit(main())
