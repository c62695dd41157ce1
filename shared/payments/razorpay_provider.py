"""Razorpay through its SDK: Orders (INR; UPI intent/QR and cards through Checkout), payments, refunds.

Razorpay orders cannot be cancelled: an unpaid order simply stays unpaid, and a payment that
still arrives later is refunded by the flow (late payment).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import razorpay
import requests

from shared.config import Settings
from shared.payments.provider import (
    PaymentState,
    ProviderName,
    ProviderOrder,
    ProviderPayment,
    ProviderRefund,
    ProviderRejected,
    ProviderUnavailable,
    RefundState,
    off_loop,
)

T = TypeVar("T")

_REFUND_STATES: dict[str, RefundState] = {"processed": "succeeded", "pending": "pending", "failed": "failed"}


class RazorpayProvider:
    name: ProviderName = "razorpay"

    def __init__(self, settings: Settings) -> None:
        if not settings.razorpay_key_id or not settings.razorpay_key_secret:
            raise ProviderRejected("Razorpay is not configured (TESTING_RAZORPAY_KEY_ID / _SECRET)")
        options = {"base_url": settings.razorpay_api_base_url.rstrip("/")} if settings.razorpay_api_base_url else {}
        self._client = razorpay.Client(auth=(settings.razorpay_key_id, settings.razorpay_key_secret), **options)
        self._key_id = settings.razorpay_key_id
        self._timeout_s = settings.payment_provider_timeout_s

    @property
    def public_key(self) -> str | None:
        return self._key_id

    async def _call(self, call: Callable[[], T]) -> T:
        def guarded() -> T:
            try:
                return call()
            except razorpay.errors.BadRequestError as exc:
                raise ProviderRejected(str(exc)) from exc
            except (razorpay.errors.ServerError, razorpay.errors.GatewayError) as exc:
                raise ProviderUnavailable(str(exc)) from exc
            except (requests.RequestException, ValueError) as exc:  # network, timeouts, non-JSON bodies
                raise ProviderUnavailable(f"{type(exc).__name__}: {exc}") from exc

        return await off_loop(guarded, self._timeout_s + 1)

    async def create_order(
        self, *, booking_id: str, amount_minor: int, currency: str, idempotency_key: str
    ) -> ProviderOrder:
        data = {
            "amount": amount_minor,
            "currency": currency,
            # The booking id as a unique receipt: Razorpay's documented way to make a retried
            # create return the first order instead of a second one.
            "receipt": booking_id,
            "unique_receipt": True,
            "notes": {"booking_id": booking_id, "idempotency_key": idempotency_key},
            "partial_payment": False,
        }
        order: dict[str, Any] = await self._call(lambda: self._client.order.create(data, timeout=self._timeout_s))
        return ProviderOrder(
            provider_id=str(order["id"]),
            amount_minor=int(order["amount"]),
            currency=str(order["currency"]),
            client_secret=None,
            raw=order,
        )

    async def fetch(self, provider_id: str) -> ProviderPayment:
        listing: dict[str, Any] = await self._call(
            lambda: self._client.order.payments(provider_id, timeout=self._timeout_s)
        )
        payments = list(listing.get("items") or [])
        return _summarise(payments)

    async def cancel(self, provider_id: str) -> bool:
        del provider_id  # Razorpay has no way to cancel an order
        return False

    async def refund(
        self, *, provider_id: str, provider_payment_id: str, amount_minor: int, idempotency_key: str
    ) -> ProviderRefund:
        notes = {"order_id": provider_id, "refund_key": idempotency_key}
        data = {"amount": amount_minor, "speed": "normal", "notes": notes}
        refund: dict[str, Any] = await self._call(
            lambda: self._client.payment.refund(
                provider_payment_id,
                data,
                headers={"X-Refund-Idempotency": idempotency_key},
                timeout=self._timeout_s,
            )
        )
        return ProviderRefund(
            provider_refund_id=str(refund["id"]),
            state=_REFUND_STATES.get(str(refund.get("status")), "pending"),
            raw=refund,
        )


def _summarise(payments: list[dict[str, Any]]) -> ProviderPayment:
    """The order's money state from its payments: captured wins, then authorised, then failed."""
    by_state: dict[PaymentState, dict[str, Any]] = {}
    for payment in payments:
        status = str(payment.get("status"))
        if status in ("captured", "refunded"):
            by_state.setdefault("succeeded", payment)
        elif status == "authorized":
            by_state.setdefault("pending", payment)
        elif status == "failed":
            by_state.setdefault("failed", payment)
    for state in ("succeeded", "pending", "failed"):
        if state in by_state:
            found = by_state[state]
            return ProviderPayment(state=state, provider_payment_id=str(found["id"]), raw=found)
    return ProviderPayment(state="created", provider_payment_id=None)
