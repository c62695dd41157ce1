"""Payment use cases: provider orders, confirming or releasing the booking, inbound updates, refunds.

The money rules (issue 7): no booking is confirmed without a succeeded payment; a payment that
succeeds for a booking that can no longer be confirmed (expired, cancelled) is refunded in full;
a refund is written (with its idempotency key) before the provider is called, and a payment has at
most one, so nothing is refunded twice. Every step reads the current rows, so running it twice, or
after a reordered event, changes nothing.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.cache.cache import Cache
from shared.config import Settings
from shared.db.database import Database
from shared.errors import Conflict, NotFound
from shared.payments import booking_transitions
from shared.payments import repository as repo
from shared.payments.models import Checkout
from shared.payments.provider import (
    PaymentProvider,
    PaymentState,
    ProviderName,
    ProviderRejected,
    ProviderUnavailable,
)
from shared.payments.razorpay_provider import RazorpayProvider
from shared.payments.states import PAID, PAYMENT_MOVES, REFUND_MOVES
from shared.payments.stripe_provider import StripeProvider

logger = logging.getLogger(__name__)

# Raised on the booking's orchestration (instance id = booking id).
PAYMENT_CONFIRMED = "PaymentConfirmed"
PAYMENT_FAILED = "PaymentFailed"
# For a booking without hold_expires_at (bookings always set it).
DEFAULT_HOLD = timedelta(minutes=15)
# Refunds the provider failed are tried again by reconciliation, this many attempts in all; then a
# person must look (logged as an error).
MAX_REFUND_ATTEMPTS = 3


class BookingNotPayable(Conflict):
    code = "booking_not_payable"
    title = "This booking is not awaiting payment"


def provider_name_for(currency: str) -> ProviderName:
    """Razorpay for INR (UPI and Indian cards), Stripe for every other currency."""
    return "razorpay" if currency.upper() == "INR" else "stripe"


def make_provider(name: str, settings: Settings) -> PaymentProvider:
    if name == "razorpay":
        return RazorpayProvider(settings)
    return StripeProvider(settings)


def order_idempotency_key(booking_id: uuid.UUID) -> str:
    return f"booking-{booking_id}-order"


def refund_idempotency_key(payment_id: uuid.UUID, attempt: int = 1) -> str:
    """The provider's idempotency key for one refund attempt: a retry after a failure is a new refund."""
    return f"refund-{payment_id}" if attempt == 1 else f"refund-{payment_id}-{attempt}"


def checkout_of(payment: repo.Payment, provider: PaymentProvider) -> Checkout:
    return Checkout(
        booking_id=payment.booking_id,
        provider="razorpay" if payment.provider == "razorpay" else "stripe",
        order_id=payment.provider_id,
        client_secret=payment.raw.get("client_secret") if payment.provider == "stripe" else None,
        key_id=provider.public_key,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        payment_status=payment.status,
    )


# --- the orchestration's activities --------------------------------------------------------------


async def create_order(
    database: Database, settings: Settings, booking_id: uuid.UUID, *, now: datetime
) -> dict[str, Any]:
    """The booking's provider order, created once: `{"checkout": …, "hold_until": …}` or `{"error": code}`.

    Raises ProviderUnavailable (5xx, timeout) so the orchestration retries; a retry finds the
    payment row, or the provider recognises the idempotency key, so it never creates a second order.
    """
    async with database.connection() as conn:
        booking = await repo.booking(conn, booking_id)
        existing = await repo.payment_for_booking(conn, booking_id)
    if booking is None:
        return {"error": "booking_not_found"}
    # The booking's own hold (its snapshot of the platform's hold minutes) bounds the wait.
    hold_until = (booking.hold_expires_at or now + DEFAULT_HOLD).isoformat()
    if existing is not None:
        provider = make_provider(existing.provider, settings)
        return {"checkout": checkout_of(existing, provider).model_dump(mode="json"), "hold_until": hold_until}
    if booking.status != "pending_payment":
        return {"error": "booking_not_payable"}
    try:
        provider = make_provider(provider_name_for(booking.currency), settings)
        order = await provider.create_order(
            booking_id=str(booking_id),
            amount_minor=booking.price_minor,
            currency=booking.currency,
            idempotency_key=order_idempotency_key(booking_id),
        )
    except ProviderRejected as exc:
        logger.error("the provider refused the order for booking %s: %s", booking_id, exc)
        return {"error": "provider_rejected"}
    async with database.transaction() as conn:
        await repo.insert_payment(
            conn,
            booking_id=booking_id,
            provider=provider.name,
            provider_id=order.provider_id,
            amount_minor=order.amount_minor,
            currency=order.currency,
            raw=order.raw,
        )
        payment = await repo.payment_for_booking(conn, booking_id)
    assert payment is not None
    return {"checkout": checkout_of(payment, provider).model_dump(mode="json"), "hold_until": hold_until}


async def confirm_paid_booking(
    database: Database, cache: Cache, settings: Settings, booking_id: uuid.UUID, *, now: datetime
) -> dict[str, Any]:
    """Confirm the booking if its payment succeeded; refund a payment whose booking moved on."""
    async with database.connection() as conn:
        payment = await repo.payment_for_booking(conn, booking_id)
    if payment is None or payment.status not in PAID:
        # Only a succeeded payment confirms; a mistaken event releases the hold instead.
        return await release_booking(database, cache, settings, booking_id, reason="payment_not_captured", now=now)
    status = await booking_transitions.confirm(database, cache, booking_id, now=now)
    if status != "confirmed":
        await settle_refund(database, settings, booking_id, now=now)
    return await outcome(database, booking_id)


async def release_booking(
    database: Database, cache: Cache, settings: Settings, booking_id: uuid.UUID, *, reason: str, now: datetime
) -> dict[str, Any]:
    """Expire an unpaid booking (its slot is free again) and stop its provider order where possible.

    The booking is expired before the payment is read: a payment that succeeds concurrently is
    then either seen here or sees the expired booking itself, and is refunded either way.
    """
    await booking_transitions.expire(database, cache, booking_id, now=now)
    async with database.connection() as conn:
        payment = await repo.payment_for_booking(conn, booking_id)
    # A failed Stripe intent can still be paid again: cancel it as well.
    if payment is not None and payment.status in ("created", "pending", "failed"):
        await close_unpaid(database, settings, payment, now=now)
    elif payment is not None and payment.status == "succeeded":
        await settle_refund(database, settings, booking_id, now=now)
    logger.info("booking %s released: %s", booking_id, reason)
    return await outcome(database, booking_id, reason=reason)


async def close_unpaid(database: Database, settings: Settings, payment: repo.Payment, *, now: datetime) -> bool:
    """Stop an unpaid payment's provider object from being paid, and mark the payment failed; False
    when that is not certain yet (reconciliation asks the provider again and retries).

    Razorpay orders cannot be cancelled: the payment is failed at once and reconciliation keeps
    asking about it for the late-authorisation window. A Stripe intent is failed only once Stripe
    confirmed the cancel: when it is unreachable, or refuses because the intent already succeeded,
    the payment stays for reconciliation, which then finds the success and refunds it.
    """
    try:
        cancelled = await make_provider(payment.provider, settings).cancel(payment.provider_id)
    except ProviderUnavailable as exc:
        logger.warning(
            "could not cancel %s %s (reconciliation retries): %s", payment.provider, payment.provider_id, exc
        )
        return False
    if payment.provider == "stripe" and not cancelled:
        return False
    async with database.transaction() as conn:
        await repo.advance_payment(conn, payment.id, to="failed", allowed_from=PAYMENT_MOVES["failed"], now=now)
        if cancelled:
            await repo.mark_closed(conn, payment.id, now)
    return True


async def outcome(database: Database, booking_id: uuid.UUID, *, reason: str | None = None) -> dict[str, Any]:
    async with database.connection() as conn:
        booking = await repo.booking(conn, booking_id)
        payment = await repo.payment_for_booking(conn, booking_id)
    result: dict[str, Any] = {
        "booking_status": booking.status if booking else None,
        "payment_status": payment.status if payment else None,
    }
    if reason is not None:
        result["reason"] = reason
    return result


# --- inbound updates (verify callback, webhooks, reconciliation) ---------------------------------


@dataclass(frozen=True)
class PaymentUpdate:
    provider: str
    provider_id: str
    state: PaymentState
    provider_payment_id: str | None
    raw: dict[str, Any]


@dataclass(frozen=True)
class FollowUp:
    """What the caller must tell the booking's orchestration, if anything."""

    booking_id: uuid.UUID | None
    event: str | None
    payment_status: str | None


async def apply_payment_update(
    database: Database, settings: Settings, update: PaymentUpdate, *, now: datetime
) -> FollowUp:
    """Record what the provider says about an order/intent and decide the follow-up from the rows.

    The follow-up depends on the resulting payment and booking, not on the event: a duplicate or a
    reordered event (failed after captured) yields the same answer or nothing.
    """
    async with database.transaction() as conn:
        payment = await repo.lock_payment_by_provider_id(conn, update.provider, update.provider_id)
        if payment is None:
            logger.warning("%s update for unknown object %s ignored", update.provider, update.provider_id)
            return FollowUp(None, None, None)
        moved = None
        if update.state != "created" and payment.status in PAYMENT_MOVES[update.state]:
            moved = await repo.advance_payment(
                conn,
                payment.id,
                to=update.state,
                allowed_from=PAYMENT_MOVES[update.state],
                now=now,
                provider_payment_id=update.provider_payment_id,
                raw=update.raw,
            )
        payment = moved or payment
    async with database.connection() as conn:
        booking = await repo.booking(conn, payment.booking_id)
    booking_status = booking.status if booking else None
    if payment.status in PAID:
        if booking_status == "pending_payment":
            return FollowUp(payment.booking_id, PAYMENT_CONFIRMED, payment.status)
        if payment.status == "succeeded":
            await settle_refund(database, settings, payment.booking_id, now=now)
    elif payment.status == "failed" and update.state == "failed" and booking_status == "pending_payment":
        return FollowUp(payment.booking_id, PAYMENT_FAILED, payment.status)
    return FollowUp(payment.booking_id, None, payment.status)


# --- refunds -------------------------------------------------------------------------------------


def refund_owed(booking: repo.BookingForPayment, payment: repo.Payment) -> tuple[int, str] | None:
    """(amount, reason) a succeeded payment owes back for its booking, or None.

    A payment still refund_pending owes it as well: its refund failed and may be tried again.
    """
    if payment.status not in ("succeeded", "refund_pending"):
        return None
    paid_after_cancel = (
        booking.cancelled_at is not None
        and payment.succeeded_at is not None
        and payment.succeeded_at > booking.cancelled_at
    )
    if booking.status == "expired" or paid_after_cancel:
        return payment.amount_minor, "late_payment"
    if booking.status == "cancelled" and booking.confirmed_at is None:
        # Paid, but cancelled before the payment confirmed it: the policy granted nothing because
        # it saw no payment, yet the money is with us and no session was ever booked for it.
        return payment.amount_minor, "unconfirmed"
    due = booking.refund_due_minor or 0
    if booking.status in ("cancelled", "no_show") and due > 0:
        return min(due, payment.amount_minor), "cancellation" if booking.status == "cancelled" else "no_show"
    return None


async def settle_refund(database: Database, settings: Settings, booking_id: uuid.UUID, *, now: datetime) -> bool:
    """Refund what the booking's payment owes back (if anything), at most once, through the provider;
    True when a refund was written now."""
    async with database.transaction() as conn:
        booking = await repo.booking(conn, booking_id)
        payment = await repo.payment_for_booking(conn, booking_id)
        if booking is None or payment is None:
            return False
        payment = await repo.lock_payment(conn, payment.id)
        assert payment is not None
        owed = refund_owed(booking, payment)
        if owed is None:
            return False
        amount, reason = owed
        live, attempts = await repo.refund_attempts(conn, payment.id)
        if live:
            return False
        if attempts >= MAX_REFUND_ATTEMPTS:
            logger.error(
                "refund of payment %s (booking %s) failed %d times: the customer must be repaid by hand",
                payment.id,
                booking_id,
                attempts,
            )
            return False
        refund = await repo.insert_refund(
            conn,
            payment_id=payment.id,
            attempt=attempts + 1,
            idempotency_key=refund_idempotency_key(payment.id, attempts + 1),
            amount_minor=amount,
            reason=reason,
        )
        if refund is None:
            return False
        await repo.advance_payment(
            conn, payment.id, to="refund_pending", allowed_from=PAYMENT_MOVES["refund_pending"], now=now
        )
    await send_refund(database, settings, refund, payment, now=now)
    return True


async def refund_after_booking_ended(database: Database, settings: Settings, booking_id: uuid.UUID) -> None:
    """After a cancellation or no-show committed: refund what the policy grants, now.

    Never fails the request that ended the booking: whatever is not refunded here (provider down,
    a crash) is found and refunded by reconciliation.
    """
    try:
        await settle_refund(database, settings, booking_id, now=datetime.now(UTC))
    except Exception:
        logger.exception("refund for booking %s left to reconciliation", booking_id)


async def send_refund(
    database: Database, settings: Settings, refund: repo.Refund, payment: repo.Payment, *, now: datetime
) -> None:
    """Ask the provider for a written refund (same idempotency key on every try)."""
    provider = make_provider(payment.provider, settings)
    try:
        sent = await provider.refund(
            provider_id=payment.provider_id,
            provider_payment_id=payment.provider_payment_id or payment.provider_id,
            amount_minor=refund.amount_minor,
            idempotency_key=refund.idempotency_key,
        )
    except ProviderUnavailable as exc:
        logger.warning("refund %s not sent yet (reconciliation retries): %s", refund.id, exc)
        return
    except ProviderRejected as exc:
        logger.error("the provider refused refund %s: %s", refund.id, exc)
        async with database.transaction() as conn:
            failed = await repo.update_refund(
                conn,
                refund.id,
                provider_refund_id=None,
                status="failed",
                raw={"error": str(exc)},
                now=now,
                allowed_from=REFUND_MOVES["failed"],
            )
            if failed is not None:
                _log_refund_failure(failed)
        return
    await apply_refund_update(
        database,
        provider_refund_id=sent.provider_refund_id,
        idempotency_key=refund.idempotency_key,
        state=sent.state,
        raw=sent.raw,
        now=now,
    )


async def apply_refund_update(
    database: Database,
    *,
    provider_refund_id: str,
    idempotency_key: str | None,
    state: str,
    raw: dict[str, Any],
    now: datetime,
) -> None:
    """Record a refund's state (from the create response, a webhook or reconciliation), forward only."""
    async with database.transaction() as conn:
        refund = await repo.lock_refund(conn, provider_refund_id=provider_refund_id, idempotency_key=idempotency_key)
        if refund is None:
            logger.warning("update for unknown refund %s ignored", provider_refund_id)
            return
        if state == refund.status or state not in REFUND_MOVES or refund.status not in REFUND_MOVES[state]:
            # Same state again or an older one: still remember the provider's id.
            if refund.provider_refund_id is None:
                await repo.update_refund(
                    conn,
                    refund.id,
                    provider_refund_id=provider_refund_id,
                    status=refund.status,
                    raw=raw,
                    now=now,
                    allowed_from=(refund.status,),
                )
            return
        await repo.update_refund(
            conn,
            refund.id,
            provider_refund_id=provider_refund_id,
            status=state,
            raw=raw,
            now=now,
            allowed_from=REFUND_MOVES[state],
        )
        if state == "failed":
            _log_refund_failure(refund)
        if state == "succeeded":
            payment = await repo.lock_payment(conn, refund.payment_id)
            assert payment is not None
            final = "refunded" if refund.amount_minor >= payment.amount_minor else "partially_refunded"
            await repo.advance_payment(conn, payment.id, to=final, allowed_from=PAYMENT_MOVES[final], now=now)


def _log_refund_failure(refund: repo.Refund) -> None:
    """A failed refund is tried again by reconciliation; after the last attempt a person must act."""
    if refund.attempt >= MAX_REFUND_ATTEMPTS:
        logger.error(
            "refund of payment %s failed %d times: the customer must be repaid by hand",
            refund.payment_id,
            refund.attempt,
        )
    else:
        logger.warning("refund %s of payment %s failed; reconciliation tries again", refund.id, refund.payment_id)


# --- reads ---------------------------------------------------------------------------------------


async def booking_for_student(
    database: Database, booking_id: uuid.UUID, student_id: uuid.UUID
) -> repo.BookingForPayment:
    """The booking if this student owns it; NotFound otherwise (never reveal others' bookings)."""
    async with database.connection() as conn:
        booking = await repo.booking(conn, booking_id)
    if booking is None or booking.student_id != student_id:
        raise NotFound("no such booking")
    return booking


async def payment_for_booking(database: Database, booking_id: uuid.UUID) -> repo.Payment | None:
    async with database.connection() as conn:
        return await repo.payment_for_booking(conn, booking_id)
