"""Stripe through its SDK: PaymentIntents (every currency but INR), cancel, refunds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import stripe

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

_INTENT_STATES: dict[str, PaymentState] = {
    "succeeded": "succeeded",
    "processing": "pending",
    "requires_capture": "pending",
    "canceled": "failed",
}
_REFUND_STATES: dict[str, RefundState] = {"succeeded": "succeeded", "failed": "failed", "canceled": "failed"}


class StripeProvider:
    name: ProviderName = "stripe"

    def __init__(self, settings: Settings) -> None:
        if not settings.stripe_secret_key:
            raise ProviderRejected("Stripe is not configured (TESTING_STRIPE_SECRET_KEY)")
        self._client = stripe.StripeClient(
            settings.stripe_secret_key,
            base_addresses={"api": settings.stripe_api_base_url.rstrip("/")} if settings.stripe_api_base_url else {},
            # Retries belong to the orchestration (with our own idempotency keys), not to the SDK.
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=settings.payment_provider_timeout_s),
        )
        self._public_key = settings.stripe_public_key
        self._timeout_s = settings.payment_provider_timeout_s

    @property
    def public_key(self) -> str | None:
        return self._public_key

    async def _call(self, call: Callable[[], T]) -> T:
        def guarded() -> T:
            try:
                return call()
            except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
                raise ProviderUnavailable(str(exc)) from exc
            except stripe.StripeError as exc:
                if exc.http_status is None or exc.http_status >= 500:
                    raise ProviderUnavailable(str(exc)) from exc
                raise ProviderRejected(str(exc)) from exc

        return await off_loop(guarded, self._timeout_s + 1)

    async def create_order(
        self, *, booking_id: str, amount_minor: int, currency: str, idempotency_key: str
    ) -> ProviderOrder:
        intent = await self._call(
            lambda: self._client.v1.payment_intents.create(
                params={
                    "amount": amount_minor,
                    "currency": currency.lower(),
                    "metadata": {"booking_id": booking_id},
                },
                options={"idempotency_key": idempotency_key},
            )
        )
        return ProviderOrder(
            provider_id=str(intent.id),
            amount_minor=int(intent.amount),
            currency=str(intent.currency).upper(),
            client_secret=intent.client_secret,
            raw=_plain(intent),
        )

    async def fetch(self, provider_id: str) -> ProviderPayment:
        intent = await self._call(lambda: self._client.v1.payment_intents.retrieve(provider_id))
        state = _INTENT_STATES.get(str(intent.status), "created")
        if state == "created" and getattr(intent, "last_payment_error", None):
            state = "failed"
        return ProviderPayment(
            state=state,
            provider_payment_id=str(intent.id),
            raw=_plain(intent),
            closed=str(intent.status) == "canceled",
        )

    async def cancel(self, provider_id: str) -> bool:
        try:
            await self._call(lambda: self._client.v1.payment_intents.cancel(provider_id))
        except ProviderRejected:
            return False  # already succeeded or cancelled: nothing to release
        return True

    async def refund(
        self, *, provider_id: str, provider_payment_id: str, amount_minor: int, idempotency_key: str
    ) -> ProviderRefund:
        del provider_payment_id  # Stripe refunds the PaymentIntent itself
        refund = await self._call(
            lambda: self._client.v1.refunds.create(
                params={
                    "payment_intent": provider_id,
                    "amount": amount_minor,
                    "metadata": {"refund_key": idempotency_key},
                },
                options={"idempotency_key": idempotency_key},
            )
        )
        return ProviderRefund(
            provider_refund_id=str(refund.id),
            state=_REFUND_STATES.get(str(refund.status), "pending"),
            raw=_plain(refund),
        )


def _plain(obj: stripe.StripeObject) -> dict[str, Any]:
    return dict(obj.to_dict())
