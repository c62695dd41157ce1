"""A fake Razorpay API (https://api.razorpay.com/v1 shape) for the real `razorpay` SDK, plus test controls.

    with FakeRazorpay(webhook_url=receiver) as fake:
        client = razorpay.Client(auth=(fake.key_id, fake.key_secret), base_url=fake.url)
        order = client.order.create({"amount": 50000, "currency": "INR", "receipt": "booking-1"})
        checkout = fake.pay(order["id"])          # payment.authorized, payment.captured, order.paid sent
        client.utility.verify_payment_signature(checkout.callback())

API: basic auth (key id, key secret); orders, payments (fetch, capture, refund), refunds; errors as
`{"error": {"code": "BAD_REQUEST_ERROR", "description": ...}}` (the SDK raises BadRequestError).
Idempotency as Razorpay documents it (best-practices/retries-and-idempotency, refunds API): an order
created with `unique_receipt: true` is the one order for its `receipt` (without it, every create
makes a new order, as on Razorpay); a refund with an `X-Refund-Idempotency` header (at least 10
characters of letters, digits, `-`, `_`) is the one refund for that key. The same key with the
same body returns the first object; with another body, a BAD_REQUEST_ERROR.

Signatures as Razorpay documents them: checkout `razorpay_signature` = hex HMAC-SHA256(key secret,
"order_id|payment_id"); webhook `X-Razorpay-Signature` = hex HMAC-SHA256(webhook secret, raw body),
with `X-Razorpay-Event-Id`.

Run alone: `python -m devhost.fakes.razorpay --port 8401` (see devhost/fakes/README.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from devhost.fakes import process
from devhost.fakes.base import FakeProvider, ProviderError, json_response
from devhost.fakes.ids import random_id
from devhost.fakes.razorpay_params import (
    Entity,
    amount_param,
    bad_request,
    collection,
    json_body,
    not_found,
    notes_param,
    refuse_unexpected,
)
from devhost.fakes.webhooks import OutgoingEvent

PaymentOutcome = Literal["captured", "authorized", "failed"]
RefundOutcome = Literal["processed", "pending"]

DEFAULT_KEY_ID = "rzp_test_fakekey000001"
DEFAULT_KEY_SECRET = "fake_razorpay_key_secret"  # noqa: S105 - a local fake's test credential
DEFAULT_WEBHOOK_SECRET = "fake_razorpay_webhook_secret"  # noqa: S105
ACCOUNT_ID = "acc_FakeAccount0001"
CURRENCIES = frozenset({"INR", "USD", "EUR", "GBP", "SGD", "AED", "AUD", "CAD"})
ORDER_FIELDS = frozenset(
    {"amount", "currency", "receipt", "notes", "partial_payment", "payment_capture", "unique_receipt"}
)
REFUND_KEY = re.compile(r"^[A-Za-z0-9_-]{10,}$")
REFUND_FIELDS = frozenset({"amount", "speed", "notes", "receipt"})


def payment_signature(order_id: str, payment_id: str, key_secret: str) -> str:
    """Checkout's razorpay_signature."""
    message = f"{order_id}|{payment_id}".encode()
    return hmac.new(key_secret.encode(), message, hashlib.sha256).hexdigest()


def webhook_signature(body: bytes, webhook_secret: str) -> str:
    """X-Razorpay-Signature over the raw body."""
    return hmac.new(webhook_secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Checkout:
    """What Checkout's handler gets: the three fields the app's verify endpoint receives."""

    razorpay_order_id: str
    razorpay_payment_id: str
    razorpay_signature: str | None  # None when the payment failed: Checkout reports an error instead

    def callback(self) -> dict[str, str]:
        if self.razorpay_signature is None:
            raise ValueError("a failed payment has no checkout signature")
        return {
            "razorpay_order_id": self.razorpay_order_id,
            "razorpay_payment_id": self.razorpay_payment_id,
            "razorpay_signature": self.razorpay_signature,
        }


class FakeRazorpay(FakeProvider):
    def __init__(
        self,
        *,
        key_id: str = DEFAULT_KEY_ID,
        key_secret: str = DEFAULT_KEY_SECRET,
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        webhook_url: str | None = None,
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(port=port, webhook_url=webhook_url)
        self.key_id = key_id
        self.key_secret = key_secret
        self.webhook_secret = webhook_secret
        self.clock = clock
        self.reset_state()

    def reset_state(self) -> None:
        self.orders: dict[str, Entity] = {}
        self.payments: dict[str, Entity] = {}
        self.refunds: dict[str, Entity] = {}
        self._idempotent: dict[tuple[str, str], tuple[str, str]] = {}  # (kind, key) -> (fingerprint, id)
        self.refund_outcome: RefundOutcome = "processed"
        self.webhook_signing: Literal["valid", "wrong_secret", "missing"] = "valid"

    def app_env(self) -> dict[str, str]:
        return {
            "RAZORPAY_API_BASE_URL": self.url,
            "TESTING_RAZORPAY_KEY_ID": self.key_id,
            "TESTING_RAZORPAY_KEY_SECRET": self.key_secret,
            "RAZORPAY_WEBHOOK_SECRET": self.webhook_secret,
        }

    # --- provider hooks -------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/orders", self._create_order)
        app.router.add_get("/v1/orders/{id}", self._fetch_order)
        app.router.add_get("/v1/orders/{id}/payments", self._order_payments)
        app.router.add_get("/v1/payments/{id}", self._fetch_payment)
        app.router.add_post("/v1/payments/{id}/capture", self._capture)
        app.router.add_post("/v1/payments/{id}/refund", self._refund)
        app.router.add_get("/v1/payments/{id}/refunds", self._payment_refunds)
        app.router.add_get("/v1/refunds/{id}", self._fetch_refund)
        app.router.add_post("/__control/orders/{id}/pay", self._control_pay)
        app.router.add_post("/__control/payments/{id}/authorize", self._control_authorize)
        app.router.add_post("/__control/refunds/{id}/settle", self._control_settle_refund)
        self.add_control_routes(app)

    def authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user = password = ""
        credentials_ok = hmac.compare_digest(f"{user}:{password}", f"{self.key_id}:{self.key_secret}")
        if scheme.lower() != "basic" or not credentials_ok:
            raise ProviderError(
                401,
                {
                    "error": {
                        "code": "BAD_REQUEST_ERROR",
                        "description": "Authentication failed",
                        "source": "NA",
                        "step": "NA",
                        "reason": "NA",
                        "metadata": {},
                    }
                },
            )

    def server_error(self, status: int) -> ProviderError:
        code = "GATEWAY_ERROR" if status in (502, 504) else "SERVER_ERROR"
        description = "The server encountered an error. The incident has been reported to admins."
        return ProviderError(status, {"error": {"code": code, "description": description}})

    def unknown_route(self) -> ProviderError:
        return bad_request("The requested URL was not found on the server.")

    def sign_webhook(self, event: OutgoingEvent) -> Mapping[str, str]:
        headers = {"User-Agent": "Razorpay-Webhook/v1", "X-Razorpay-Event-Id": event.event_id}
        if self.webhook_signing == "valid":
            headers["X-Razorpay-Signature"] = webhook_signature(event.body, self.webhook_secret)
        elif self.webhook_signing == "wrong_secret":
            headers["X-Razorpay-Signature"] = webhook_signature(event.body, self.webhook_secret + "-wrong")
        return headers

    # --- API ------------------------------------------------------------------------------------

    async def _create_order(self, request: web.Request) -> web.Response:
        payload = await json_body(request)
        refuse_unexpected(payload, ORDER_FIELDS)
        currency = payload.get("currency")
        if not isinstance(currency, str) or currency not in CURRENCIES:
            raise bad_request("Currency is not supported", field="currency")
        amount = amount_param(payload.get("amount"), currency)
        receipt = payload.get("receipt")
        if receipt is not None and (not isinstance(receipt, str) or len(receipt) > 40):
            raise bad_request("The receipt may not be greater than 40 characters.", field="receipt")
        notes = notes_param(payload.get("notes"))
        unique_receipt = payload.get("unique_receipt", False)
        if not isinstance(unique_receipt, bool) or (unique_receipt and receipt is None):
            raise bad_request("unique_receipt must be a boolean and needs a receipt", field="unique_receipt")
        key = receipt if unique_receipt else None
        fingerprint = json.dumps([amount, currency, notes], sort_keys=True)
        existing = self._replay("order", key, fingerprint)
        if existing is not None:
            return json_response(self.orders[existing])
        order: Entity = {
            "id": random_id("order_", 14),
            "entity": "order",
            "amount": amount,
            "amount_paid": 0,
            "amount_due": amount,
            "currency": currency,
            "receipt": receipt,
            "offer_id": None,
            "status": "created",
            "attempts": 0,
            "notes": notes,
            "created_at": int(self.clock()),
        }
        self.orders[order["id"]] = order
        if key:
            self._idempotent[("order", key)] = (fingerprint, order["id"])
        return json_response(order)

    def _replay(self, kind: str, key: str | None, fingerprint: str) -> str | None:
        if not key or (kind, key) not in self._idempotent:
            return None
        first_fingerprint, object_id = self._idempotent[(kind, key)]
        if first_fingerprint != fingerprint:
            if kind == "order":
                raise bad_request("Order receipt should be unique.", field="receipt")
            raise bad_request("Different request with the same idempotency key has already been processed.")
        return object_id

    async def _fetch_order(self, request: web.Request) -> web.Response:
        return json_response(self._order(request.match_info["id"]))

    async def _order_payments(self, request: web.Request) -> web.Response:
        order = self._order(request.match_info["id"])
        items = [p for p in self.payments.values() if p["order_id"] == order["id"]]
        return json_response(collection(items))

    async def _fetch_payment(self, request: web.Request) -> web.Response:
        return json_response(self._payment(request.match_info["id"]))

    async def _capture(self, request: web.Request) -> web.Response:
        payment = self._payment(request.match_info["id"])
        payload = await json_body(request)
        if payment["status"] != "authorized":
            raise bad_request(
                "This payment has already been captured"
                if payment["captured"]
                else "Only payments which have been authorized and not yet captured can be captured"
            )
        if payload.get("amount") != payment["amount"]:
            raise bad_request("Capture amount must be equal to the amount authorized", field="amount")
        events = self._capture_payment(payment)
        self.webhooks.send_soon(events)
        return json_response(payment)

    async def _refund(self, request: web.Request) -> web.Response:
        payment = self._payment(request.match_info["id"])
        payload = await json_body(request)
        refuse_unexpected(payload, REFUND_FIELDS)
        receipt = payload.get("receipt")
        key = request.headers.get("X-Refund-Idempotency")
        if key is not None and not REFUND_KEY.match(key):
            raise bad_request("The idempotency key must be at least 10 letters, digits, hyphens or underscores")
        fingerprint = json.dumps([payment["id"], payload], sort_keys=True)
        existing = self._replay("refund", key, fingerprint)
        if existing is not None:
            return json_response(self.refunds[existing])
        remaining = payment["amount"] - payment["amount_refunded"]
        amount = amount_param(payload.get("amount", max(remaining, 100)), payment["currency"])
        speed = payload.get("speed", "normal")
        if speed not in ("normal", "optimum"):
            raise bad_request("The selected speed is invalid.", field="speed")
        notes = notes_param(payload.get("notes"))
        if not payment["captured"]:
            raise bad_request("The payment has not been captured yet. Only captured payments can be refunded")
        if remaining <= 0:
            raise bad_request("The payment has been fully refunded already")
        if amount > remaining:
            raise bad_request("The refund amount provided is greater than amount captured", field="amount")
        refund: Entity = {
            "id": random_id("rfnd_", 14),
            "entity": "refund",
            "amount": amount,
            "currency": payment["currency"],
            "payment_id": payment["id"],
            "notes": notes,
            "receipt": receipt,
            "acquirer_data": {"arn": None},
            "created_at": int(self.clock()),
            "batch_id": None,
            "status": "pending",
            "speed_processed": "normal",
            "speed_requested": speed,
        }
        self.refunds[refund["id"]] = refund
        payment["amount_refunded"] += amount
        payment["refund_status"] = "full" if payment["amount_refunded"] == payment["amount"] else "partial"
        if payment["refund_status"] == "full":
            payment["status"] = "refunded"
        if key:
            self._idempotent[("refund", key)] = (fingerprint, refund["id"])
        if self.refund_outcome == "processed":
            self.webhooks.send_soon(self._settle_refund(refund, "processed"))
        return json_response(refund)

    async def _payment_refunds(self, request: web.Request) -> web.Response:
        payment = self._payment(request.match_info["id"])
        return json_response(collection([r for r in self.refunds.values() if r["payment_id"] == payment["id"]]))

    async def _fetch_refund(self, request: web.Request) -> web.Response:
        refund = self.refunds.get(request.match_info["id"])
        if refund is None:
            raise not_found()
        return json_response(refund)

    def _order(self, order_id: str) -> Entity:
        order = self.orders.get(order_id)
        if order is None:
            raise not_found()
        return order

    def _payment(self, payment_id: str) -> Entity:
        payment = self.payments.get(payment_id)
        if payment is None:
            raise not_found()
        return payment

    # --- state changes that a real payer / bank would cause ------------------------------------

    def _new_payment(self, order: Entity, method: str) -> Entity:
        payment: Entity = {
            "id": random_id("pay_", 14),
            "entity": "payment",
            "amount": order["amount"],
            "currency": order["currency"],
            "status": "created",
            "order_id": order["id"],
            "invoice_id": None,
            "international": False,
            "method": method,
            "amount_refunded": 0,
            "refund_status": None,
            "captured": False,
            "description": None,
            "card_id": None,
            "bank": None,
            "wallet": None,
            "vpa": "success@razorpay" if method == "upi" else None,
            "email": "student@example.com",
            "contact": "+919000090000",
            "notes": order["notes"],
            "fee": None,
            "tax": None,
            "error_code": None,
            "error_description": None,
            "error_source": None,
            "error_step": None,
            "error_reason": None,
            "acquirer_data": {},
            "created_at": int(self.clock()),
        }
        self.payments[payment["id"]] = payment
        order["attempts"] += 1
        if order["status"] == "created":
            order["status"] = "attempted"
        return payment

    def _authorize(self, payment: Entity) -> list[OutgoingEvent]:
        payment.update(
            status="authorized",
            error_code=None,
            error_description=None,
            error_source=None,
            error_step=None,
            error_reason=None,
            acquirer_data={"rrn": random_id("", 12)} if payment["method"] == "upi" else {"auth_code": "123456"},
        )
        return [self._event("payment.authorized", payment=payment)]

    def _capture_payment(self, payment: Entity) -> list[OutgoingEvent]:
        fee = payment["amount"] * 2 // 100
        payment.update(status="captured", captured=True, fee=fee, tax=fee * 18 // 118)
        events = [self._event("payment.captured", payment=payment)]
        order = self.orders.get(payment["order_id"])
        if order is not None and order["status"] != "paid":
            order.update(status="paid", amount_paid=order["amount"], amount_due=0)
            events.append(self._event("order.paid", payment=payment, order=order))
        return events

    def _fail(self, payment: Entity) -> list[OutgoingEvent]:
        payment.update(
            status="failed",
            error_code="BAD_REQUEST_ERROR",
            error_description="Payment failed because the payer declined it in the UPI app.",
            error_source="customer",
            error_step="payment_authorization",
            error_reason="payment_cancelled",
        )
        return [self._event("payment.failed", payment=payment)]

    def _settle_refund(self, refund: Entity, status: Literal["processed", "failed"]) -> list[OutgoingEvent]:
        refund["status"] = status
        payment = self.payments[refund["payment_id"]]
        if status == "failed":  # the money stays with the merchant: the payment is refundable again
            payment["amount_refunded"] -= refund["amount"]
            payment["refund_status"] = "partial" if payment["amount_refunded"] else None
            payment["status"] = "captured"
        else:
            refund["acquirer_data"] = {"arn": random_id("", 23)}
        return [self._event(f"refund.{status}", refund=refund, payment=payment)]

    def _event(self, name: str, **entities: Entity) -> OutgoingEvent:
        body = {
            "entity": "event",
            "account_id": ACCOUNT_ID,
            "event": name,
            "contains": list(entities),
            "payload": {kind: {"entity": dict(entity)} for kind, entity in entities.items()},
            "created_at": int(self.clock()),
        }
        return OutgoingEvent(random_id("", 14), name, json.dumps(body).encode())

    # --- test controls --------------------------------------------------------------------------

    def pay(self, order_id: str, outcome: PaymentOutcome = "captured", *, method: str = "upi") -> Checkout:
        """The payer completes Checkout: a payment in state `outcome`; its webhooks are delivered."""
        return self.call(self.pay_async(order_id, outcome, method=method))

    async def pay_async(self, order_id: str, outcome: PaymentOutcome = "captured", *, method: str = "upi") -> Checkout:
        order = self.orders.get(order_id)
        if order is None:
            raise KeyError(order_id)
        if order["status"] == "paid":  # Checkout refuses to take a second payment for a paid order
            raise ValueError(f"order {order_id} is already paid")
        payment = self._new_payment(order, method)
        if outcome == "failed":
            await self.webhooks.send(self._fail(payment))
            return Checkout(order_id, payment["id"], None)
        events = self._authorize(payment)
        if outcome == "captured":
            events += self._capture_payment(payment)
        await self.webhooks.send(events)
        return Checkout(order_id, payment["id"], payment_signature(order_id, payment["id"], self.key_secret))

    def authorize_late(self, payment_id: str, *, capture: bool = True) -> None:
        """A failed payment is authorised after all (the bank confirmed late) and, by default, captured."""
        self.call(self.authorize_late_async(payment_id, capture=capture))

    async def authorize_late_async(self, payment_id: str, *, capture: bool = True) -> None:
        payment = self.payments[payment_id]
        if payment["status"] != "failed":
            raise ValueError(f"payment {payment_id} is {payment['status']}, not failed")
        events = self._authorize(payment)
        if capture:
            events += self._capture_payment(payment)
        await self.webhooks.send(events)

    def settle_refund(self, refund_id: str, status: Literal["processed", "failed"] = "processed") -> None:
        """Finish a pending refund (refund_outcome = "pending") and deliver refund.processed/failed."""
        self.call(self.settle_refund_async(refund_id, status))

    async def settle_refund_async(self, refund_id: str, status: Literal["processed", "failed"]) -> None:
        refund = self.refunds[refund_id]
        if refund["status"] != "pending":
            raise ValueError(f"refund {refund_id} is {refund['status']}, not pending")
        await self.webhooks.send(self._settle_refund(refund, status))

    async def _control_pay(self, request: web.Request) -> web.Response:
        payload = await json_body(request)
        checkout = await self.pay_async(
            request.match_info["id"], payload.get("outcome", "captured"), method=payload.get("method", "upi")
        )
        return json_response(
            {
                "razorpay_order_id": checkout.razorpay_order_id,
                "razorpay_payment_id": checkout.razorpay_payment_id,
                "razorpay_signature": checkout.razorpay_signature,
            }
        )

    async def _control_authorize(self, request: web.Request) -> web.Response:
        payload = await json_body(request)
        await self.authorize_late_async(request.match_info["id"], capture=bool(payload.get("capture", True)))
        return json_response(self.payments[request.match_info["id"]])

    async def _control_settle_refund(self, request: web.Request) -> web.Response:
        payload = await json_body(request)
        await self.settle_refund_async(request.match_info["id"], payload.get("status", "processed"))
        return json_response(self.refunds[request.match_info["id"]])


def main(argv: list[str] | None = None) -> int:
    parser = process.arguments("A fake Razorpay API on 127.0.0.1 for local runs and tests.")
    parser.add_argument("--key-id", default=os.environ.get("TESTING_RAZORPAY_KEY_ID") or DEFAULT_KEY_ID)
    parser.add_argument("--key-secret", default=os.environ.get("TESTING_RAZORPAY_KEY_SECRET") or DEFAULT_KEY_SECRET)
    parser.add_argument("--webhook-secret", default=os.environ.get("RAZORPAY_WEBHOOK_SECRET") or DEFAULT_WEBHOOK_SECRET)
    args = parser.parse_args(argv)
    fake = FakeRazorpay(
        key_id=args.key_id,
        key_secret=args.key_secret,
        webhook_secret=args.webhook_secret,
        webhook_url=args.webhook_url,
        port=args.port,
    )
    return process.run_until_signalled(fake, "razorpay")


if __name__ == "__main__":
    raise SystemExit(main())
