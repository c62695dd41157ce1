"""What the payment routes read and return."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Checkout(BaseModel):
    """What the client needs to pay: Razorpay Checkout (key id + order id) or Stripe.js (client secret)."""

    booking_id: uuid.UUID
    provider: Literal["razorpay", "stripe"]
    # Razorpay order_… or Stripe pi_…
    order_id: str
    client_secret: str | None = None
    key_id: str | None = None
    amount_minor: int
    currency: str
    payment_status: str


class CheckoutState(BaseModel):
    """The answer of POST /api/bookings/{id}/payment: the checkout once the provider order exists."""

    booking_id: uuid.UUID
    booking_status: str
    checkout: Checkout | None = None


class RazorpayVerify(BaseModel):
    """Razorpay Checkout's success handler fields, plus our booking id."""

    model_config = ConfigDict(extra="ignore")

    booking_id: uuid.UUID
    razorpay_payment_id: str = Field(min_length=1, max_length=100)
    razorpay_order_id: str = Field(min_length=1, max_length=100)
    razorpay_signature: str = Field(min_length=1, max_length=200)


class PaymentView(BaseModel):
    booking_id: uuid.UUID
    booking_status: str
    payment_status: str


class WebhookAck(BaseModel):
    received: bool = True
    duplicate: bool = False
