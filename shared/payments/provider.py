"""The one small port every payment provider implements, and the errors the flow tells apart.

Adapters (razorpay_provider.py, stripe_provider.py) use the providers' SDKs, which are synchronous:
`off_loop` runs their calls in a thread with a deadline, so the event loop never waits on the network.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

T = TypeVar("T")

ProviderName = Literal["razorpay", "stripe"]
# The provider object's money state in our vocabulary (payments.status without the refund states).
PaymentState = Literal["created", "pending", "succeeded", "failed"]
RefundState = Literal["pending", "succeeded", "failed"]


class ProviderUnavailable(Exception):
    """5xx, timeout or connection failure: the call may succeed if retried (with the same key)."""


class ProviderRejected(Exception):
    """The provider refused the request (4xx): retrying the same request will not help."""


@dataclass(frozen=True)
class ProviderOrder:
    """A created Razorpay order or Stripe PaymentIntent."""

    provider_id: str
    amount_minor: int
    currency: str
    client_secret: str | None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderPayment:
    """What the provider says about an order/intent now."""

    state: PaymentState
    provider_payment_id: str | None
    raw: dict[str, Any] = field(default_factory=dict)
    # The object can never be paid any more (a cancelled Stripe intent).
    closed: bool = False


@dataclass(frozen=True)
class ProviderRefund:
    provider_refund_id: str
    state: RefundState
    raw: dict[str, Any] = field(default_factory=dict)


class PaymentProvider(Protocol):
    name: ProviderName

    @property
    def public_key(self) -> str | None:
        """What the client's checkout needs to identify us (Razorpay key id, Stripe publishable key)."""
        ...

    async def create_order(
        self, *, booking_id: str, amount_minor: int, currency: str, idempotency_key: str
    ) -> ProviderOrder: ...

    async def fetch(self, provider_id: str) -> ProviderPayment: ...

    async def cancel(self, provider_id: str) -> bool:
        """Cancel an unpaid order/intent; False when the provider has no such operation or refuses."""
        ...

    async def refund(
        self, *, provider_id: str, provider_payment_id: str, amount_minor: int, idempotency_key: str
    ) -> ProviderRefund: ...


async def off_loop(call: Callable[[], T], timeout_s: float) -> T:
    """Run a blocking SDK call in a worker thread; ProviderUnavailable if it outlives `timeout_s`."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(call), timeout_s)
    except TimeoutError:
        raise ProviderUnavailable(f"the provider did not answer within {timeout_s:g}s") from None
