"""Signature checks with the providers' own SDK utilities, always over the raw request body.

- Razorpay checkout callback: HMAC-SHA256(key secret, f"{order_id}|{payment_id}"), with the order id
  we stored, never the one the client sends.
- Razorpay webhook: HMAC-SHA256(webhook secret, raw body) in X-Razorpay-Signature.
- Stripe webhook: Stripe-Signature `t=…,v1=…` over f"{t}.{raw body}" with a timestamp tolerance.
"""

from __future__ import annotations

from typing import Any

import razorpay
import stripe

from shared.config import Settings
from shared.errors import DomainError


class InvalidSignature(DomainError):
    status = 400
    code = "invalid_signature"
    title = "The signature does not match"


class PaymentsNotConfigured(DomainError):
    status = 503
    code = "payments_not_configured"
    title = "This payment provider is not configured"


def _ascii(signature: str) -> str:
    # The SDKs compare with hmac.compare_digest, which raises TypeError for non-ASCII str.
    if not signature.isascii():
        raise InvalidSignature("the signature is not ASCII")
    return signature


def verify_razorpay_payment(settings: Settings, *, order_id: str, payment_id: str, signature: str) -> None:
    if not settings.razorpay_key_id or not settings.razorpay_key_secret:
        raise PaymentsNotConfigured()
    _ascii(signature)
    utility = razorpay.Utility(razorpay.Client(auth=(settings.razorpay_key_id, settings.razorpay_key_secret)))
    params = {"razorpay_order_id": order_id, "razorpay_payment_id": payment_id, "razorpay_signature": signature}
    try:
        utility.verify_payment_signature(params)
    except razorpay.errors.SignatureVerificationError:
        raise InvalidSignature() from None


def verify_razorpay_webhook(settings: Settings, raw_body: bytes, signature: str | None) -> None:
    if not settings.razorpay_webhook_secret:
        raise PaymentsNotConfigured()
    if not signature:
        raise InvalidSignature("X-Razorpay-Signature is missing")
    _ascii(signature)
    try:
        body = raw_body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidSignature("the body is not UTF-8") from None
    secret = settings.razorpay_webhook_secret
    try:
        razorpay.Utility().verify_webhook_signature(body, signature, secret)
    except razorpay.errors.SignatureVerificationError:
        raise InvalidSignature() from None


def stripe_event(settings: Settings, raw_body: bytes, signature: str | None) -> dict[str, Any]:
    """The verified event as a plain dict; InvalidSignature for forged, stale or malformed deliveries."""
    if not settings.stripe_webhook_secret:
        raise PaymentsNotConfigured()
    if not signature:
        raise InvalidSignature("Stripe-Signature is missing")
    _ascii(signature)
    secret = settings.stripe_webhook_secret
    try:
        event = stripe.Webhook.construct_event(
            raw_body, signature, secret, tolerance=settings.stripe_webhook_tolerance_s
        )
    except stripe.SignatureVerificationError as exc:
        raise InvalidSignature(str(exc.user_message or "the signature does not match")) from None
    except ValueError:  # a verified body that is not JSON
        raise InvalidSignature("the body is not a JSON event") from None
    return dict(event.to_dict())
