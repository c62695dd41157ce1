"""Provider webhook payloads read into our updates (pure functions; the signature is checked before).

Razorpay: `{"event": "payment.captured", "payload": {"payment": {"entity": {...}}}}`, the event id
in the X-Razorpay-Event-Id header. Stripe: `{"id": "evt_…", "type": "payment_intent.succeeded",
"data": {"object": {...}}}`. Events we do not act on are acknowledged and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.errors import DomainError
from shared.payments.provider import PaymentState, RefundState
from shared.payments.service import PaymentUpdate


class MalformedEvent(DomainError):
    status = 400
    code = "malformed_event"
    title = "The event is not in the provider's format"


@dataclass(frozen=True)
class RefundUpdate:
    provider_refund_id: str
    idempotency_key: str | None
    state: RefundState
    raw: dict[str, Any]


_RAZORPAY_PAYMENT_EVENTS: dict[str, PaymentState] = {
    "payment.authorized": "pending",
    "payment.captured": "succeeded",
    "order.paid": "succeeded",
    "payment.failed": "failed",
}
_RAZORPAY_REFUND_EVENTS: dict[str, RefundState] = {
    "refund.created": "pending",
    "refund.processed": "succeeded",
    "refund.failed": "failed",
}
_STRIPE_PAYMENT_EVENTS: dict[str, PaymentState] = {
    "payment_intent.processing": "pending",
    "payment_intent.succeeded": "succeeded",
    "payment_intent.payment_failed": "failed",
    "payment_intent.canceled": "failed",
}
_STRIPE_REFUND_STATES: dict[str, RefundState] = {
    "pending": "pending",
    "requires_action": "pending",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "failed",
}


def _entity(event: dict[str, Any], name: str) -> dict[str, Any]:
    try:
        entity = event["payload"][name]["entity"]
    except (KeyError, TypeError):
        raise MalformedEvent(f"the event has no {name} entity") from None
    if not isinstance(entity, dict) or not isinstance(entity.get("id"), str):
        raise MalformedEvent(f"the {name} entity has no id")
    return entity


def _notes_key(notes: Any) -> str | None:
    key = notes.get("refund_key") if isinstance(notes, dict) else None
    return key if isinstance(key, str) else None


def event_kind(event: dict[str, Any], field: str) -> str:
    """The event's type name (`event` for Razorpay, `type` for Stripe); a signed body can still hold anything."""
    kind = event.get(field)
    if not isinstance(kind, str):
        raise MalformedEvent(f"the event's {field} is not a string")
    return kind


def valid_event_id(event_id: Any) -> str:
    """The provider's event id as we store it (1-255 printable ASCII); MalformedEvent otherwise."""
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= 255:
        raise MalformedEvent("the event id must be 1 to 255 characters")
    if not all(" " < ch <= "~" for ch in event_id):
        raise MalformedEvent("the event id must be printable ASCII")
    return event_id


def razorpay_update(event: dict[str, Any]) -> PaymentUpdate | RefundUpdate | None:
    kind = event_kind(event, "event")
    if kind in _RAZORPAY_PAYMENT_EVENTS:
        payment = _entity(event, "payment")
        order_id = payment.get("order_id")
        if not isinstance(order_id, str):
            raise MalformedEvent("the payment has no order id")
        return PaymentUpdate("razorpay", order_id, _RAZORPAY_PAYMENT_EVENTS[kind], payment["id"], payment)
    if kind in _RAZORPAY_REFUND_EVENTS:
        refund = _entity(event, "refund")
        return RefundUpdate(refund["id"], _notes_key(refund.get("notes")), _RAZORPAY_REFUND_EVENTS[kind], refund)
    return None


def stripe_update(event: dict[str, Any]) -> PaymentUpdate | RefundUpdate | None:
    kind = event_kind(event, "type")
    try:
        obj = event["data"]["object"]
    except (KeyError, TypeError):
        raise MalformedEvent("the event has no data.object") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        raise MalformedEvent("the event's object has no id")
    if kind in _STRIPE_PAYMENT_EVENTS:
        return PaymentUpdate("stripe", obj["id"], _STRIPE_PAYMENT_EVENTS[kind], obj["id"], obj)
    if kind.startswith("refund.") and obj.get("object") == "refund":
        state = _STRIPE_REFUND_STATES.get(str(obj.get("status")), "pending")
        return RefundUpdate(obj["id"], _notes_key(obj.get("metadata")), state, obj)
    return None
