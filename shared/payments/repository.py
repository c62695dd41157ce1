"""SQL for payments, refunds and webhook events; bookings are read through shared/bookings/repository.py."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

from shared.bookings import repository as bookings_repo
from shared.bookings.models import Booking
from shared.db.database import Connection

WebhookClaim = Literal["claimed", "processed", "in_progress"]


@dataclass(frozen=True)
class BookingForPayment:
    id: uuid.UUID
    student_id: uuid.UUID
    mentor_id: uuid.UUID
    status: str
    price_minor: int
    currency: str
    refund_due_minor: int | None
    cancelled_at: datetime | None
    hold_expires_at: datetime | None
    confirmed_at: datetime | None


@dataclass(frozen=True)
class Payment:
    id: uuid.UUID
    booking_id: uuid.UUID
    provider: str
    provider_id: str
    provider_payment_id: str | None
    amount_minor: int
    currency: str
    status: str
    raw: dict[str, Any]
    succeeded_at: datetime | None


@dataclass(frozen=True)
class Refund:
    id: uuid.UUID
    payment_id: uuid.UUID
    attempt: int
    provider_refund_id: str | None
    idempotency_key: str
    amount_minor: int
    reason: str
    status: str


INSERT_PAYMENT = """
INSERT INTO payments (booking_id, provider, provider_id, amount_minor, currency, raw)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT DO NOTHING
RETURNING id, booking_id, provider, provider_id, provider_payment_id, amount_minor, currency, status, raw,
       succeeded_at
"""

SELECT_PAYMENT_BY_BOOKING = """
SELECT id, booking_id, provider, provider_id, provider_payment_id, amount_minor, currency, status, raw,
       succeeded_at
FROM payments WHERE booking_id = $1
"""
SELECT_PAYMENT_BY_PROVIDER_ID = """
SELECT id, booking_id, provider, provider_id, provider_payment_id, amount_minor, currency, status, raw,
       succeeded_at
FROM payments WHERE provider = $1 AND provider_id = $2
"""
LOCK_PAYMENT_BY_PROVIDER_ID = """
SELECT id, booking_id, provider, provider_id, provider_payment_id, amount_minor, currency, status, raw,
       succeeded_at
FROM payments WHERE provider = $1 AND provider_id = $2 FOR UPDATE
"""
SELECT_PAYMENT = """
SELECT id, booking_id, provider, provider_id, provider_payment_id, amount_minor, currency, status, raw,
       succeeded_at
FROM payments WHERE id = $1
"""
LOCK_PAYMENT = """
SELECT id, booking_id, provider, provider_id, provider_payment_id, amount_minor, currency, status, raw,
       succeeded_at
FROM payments WHERE id = $1 FOR UPDATE
"""

# Statuses only move forward; `$3` lists the statuses the move is allowed from.
ADVANCE_PAYMENT = """
UPDATE payments
SET status = $2,
    provider_payment_id = COALESCE($4, provider_payment_id),
    raw = COALESCE($5, raw),
    succeeded_at = CASE WHEN $2 = 'succeeded' THEN $6 ELSE succeeded_at END,
    updated_at = $6
WHERE id = $1 AND status = ANY($3::text[])
RETURNING id, booking_id, provider, provider_id, provider_payment_id, amount_minor, currency, status, raw,
       succeeded_at
"""

SELECT_STALE_PAYMENTS = """
SELECT id, booking_id, provider, provider_id, provider_payment_id, amount_minor, currency, status, raw,
       succeeded_at
FROM payments
WHERE ((created_at < $1
        -- A failed Stripe intent can still be paid (another card) until it is cancelled.
        AND (status IN ('created', 'pending') OR (status = 'failed' AND provider = 'stripe' AND closed_at IS NULL)))
       -- Razorpay may still capture a failed or unpaid order's payment for days (late authorisation).
       OR (status = 'failed' AND provider = 'razorpay' AND updated_at > $3))
  AND (reconciled_at IS NULL OR reconciled_at < $4)
ORDER BY reconciled_at NULLS FIRST, created_at LIMIT $2
"""
MARK_RECONCILED = "UPDATE payments SET reconciled_at = $2 WHERE id = $1"
MARK_CLOSED = "UPDATE payments SET closed_at = COALESCE(closed_at, $2) WHERE id = $1"

# One statement, so a duplicate never waits on a lock: it claims the event (new, or unprocessed with
# its claim released or run out) or learns whether another delivery finished it. The lease runs on
# the database's clock, which every instance shares.
CLAIM_WEBHOOK_EVENT = """
WITH claim AS (
    INSERT INTO webhook_events AS e (provider, event_id, event_type, payload, received_at, claim_token, claimed_until)
    VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))
    ON CONFLICT (provider, event_id) DO UPDATE
        SET claim_token = EXCLUDED.claim_token, claimed_until = EXCLUDED.claimed_until
        WHERE e.processed_at IS NULL AND (e.claimed_until IS NULL OR e.claimed_until <= now())
    RETURNING 1
)
SELECT EXISTS (SELECT FROM claim) AS claimed,
       EXISTS (SELECT FROM webhook_events
               WHERE provider = $1 AND event_id = $2 AND processed_at IS NOT NULL) AS processed
"""
RELEASE_WEBHOOK_EVENT = """
UPDATE webhook_events SET claim_token = NULL, claimed_until = NULL
WHERE provider = $1 AND event_id = $2 AND claim_token = $3 AND processed_at IS NULL
"""
MARK_WEBHOOK_EVENT_PROCESSED = """
UPDATE webhook_events SET processed_at = $3, claim_token = NULL, claimed_until = NULL
WHERE provider = $1 AND event_id = $2 AND processed_at IS NULL
"""

INSERT_REFUND = """
INSERT INTO refunds (payment_id, attempt, idempotency_key, amount_minor, reason)
VALUES ($1, $5, $2, $3, $4)
ON CONFLICT DO NOTHING
RETURNING id, payment_id, attempt, provider_refund_id, idempotency_key, amount_minor, reason, status
"""
LOCK_REFUND_BY_PROVIDER_ID = """
SELECT id, payment_id, attempt, provider_refund_id, idempotency_key, amount_minor, reason, status
FROM refunds WHERE provider_refund_id = $1 OR idempotency_key = $2 FOR UPDATE
"""
UPDATE_REFUND = """
UPDATE refunds
SET provider_refund_id = COALESCE(provider_refund_id, $2), status = $3, raw = $4, updated_at = $5
WHERE id = $1 AND status = ANY($6::text[])
RETURNING id, payment_id, attempt, provider_refund_id, idempotency_key, amount_minor, reason, status
"""
SELECT_REFUND_ATTEMPTS = """
SELECT count(*) FILTER (WHERE status <> 'failed') AS live, count(*) AS attempts FROM refunds WHERE payment_id = $1
"""
SELECT_UNSENT_REFUNDS = """
SELECT id, payment_id, attempt, provider_refund_id, idempotency_key, amount_minor, reason, status
FROM refunds WHERE status = 'requested' AND created_at < $1 ORDER BY created_at LIMIT $2
"""

# Of these bookings' payments, those holding money without a live (not failed) refund, that have
# attempts left: service.refund_owed decides, from the booking, whether they owe any of it back.
SELECT_UNREFUNDED_PAYMENTS = """
SELECT id, booking_id, provider, provider_id, provider_payment_id, amount_minor, currency, status, raw,
       succeeded_at
FROM payments p
WHERE p.booking_id = ANY($1::uuid[]) AND p.status IN ('succeeded', 'refund_pending')
  AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.payment_id = p.id AND r.status <> 'failed')
  AND (SELECT count(*) FROM refunds r WHERE r.payment_id = p.id) < $2
"""

# Payments that succeeded in this window: their booking should be confirmed by now.
SELECT_RECENTLY_SUCCEEDED = """
SELECT id, booking_id, provider, provider_id, provider_payment_id, amount_minor, currency, status, raw,
       succeeded_at
FROM payments WHERE status = 'succeeded' AND succeeded_at >= $1 AND succeeded_at < $2
ORDER BY succeeded_at DESC LIMIT $3
"""


def _payment(row: asyncpg.Record) -> Payment:
    return Payment(**dict(row))


def _refund(row: asyncpg.Record) -> Refund:
    return Refund(**dict(row))


def _for_payment(found: Booking) -> BookingForPayment:
    return BookingForPayment(
        id=found.id,
        student_id=found.student_id,
        mentor_id=found.mentor_id,
        status=found.status,
        price_minor=found.price.amount_minor,
        currency=found.price.currency.strip(),
        refund_due_minor=found.refund_due_minor,
        cancelled_at=found.cancellation.at if found.cancellation else None,
        hold_expires_at=found.hold_expires_at,
        confirmed_at=found.confirmed_at,
    )


async def booking(conn: Connection, booking_id: uuid.UUID) -> BookingForPayment | None:
    """The booking's fields the payment flow needs, read through the bookings feature's repository."""
    found = await bookings_repo.fetch_booking(conn, booking_id)
    return None if found is None else _for_payment(found)


async def insert_payment(
    conn: Connection,
    *,
    booking_id: uuid.UUID,
    provider: str,
    provider_id: str,
    amount_minor: int,
    currency: str,
    raw: dict[str, Any],
) -> Payment | None:
    """The new payment, or None when the booking already has one."""
    row = await conn.fetchrow(INSERT_PAYMENT, booking_id, provider, provider_id, amount_minor, currency, raw)
    return None if row is None else _payment(row)


async def payment_for_booking(conn: Connection, booking_id: uuid.UUID) -> Payment | None:
    row = await conn.fetchrow(SELECT_PAYMENT_BY_BOOKING, booking_id)
    return None if row is None else _payment(row)


async def lock_payment_by_provider_id(conn: Connection, provider: str, provider_id: str) -> Payment | None:
    row = await conn.fetchrow(LOCK_PAYMENT_BY_PROVIDER_ID, provider, provider_id)
    return None if row is None else _payment(row)


async def payment(conn: Connection, payment_id: uuid.UUID) -> Payment | None:
    row = await conn.fetchrow(SELECT_PAYMENT, payment_id)
    return None if row is None else _payment(row)


async def lock_payment(conn: Connection, payment_id: uuid.UUID) -> Payment | None:
    row = await conn.fetchrow(LOCK_PAYMENT, payment_id)
    return None if row is None else _payment(row)


async def advance_payment(
    conn: Connection,
    payment_id: uuid.UUID,
    *,
    to: str,
    allowed_from: tuple[str, ...],
    now: datetime,
    provider_payment_id: str | None = None,
    raw: dict[str, Any] | None = None,
) -> Payment | None:
    """The updated payment, or None when its status does not allow the move."""
    row = await conn.fetchrow(ADVANCE_PAYMENT, payment_id, to, list(allowed_from), provider_payment_id, raw, now)
    return None if row is None else _payment(row)


async def stale_payments(
    conn: Connection, *, created_before: datetime, failed_since: datetime, asked_before: datetime, limit: int
) -> list[Payment]:
    """Unsettled payments reconciliation has not asked about since `asked_before`, least recently asked first."""
    rows = await conn.fetch(SELECT_STALE_PAYMENTS, created_before, limit, failed_since, asked_before)
    return [_payment(row) for row in rows]


async def mark_closed(conn: Connection, payment_id: uuid.UUID, now: datetime) -> None:
    """The provider confirmed the payment's object can no longer be paid."""
    await conn.execute(MARK_CLOSED, payment_id, now)


async def mark_reconciled(conn: Connection, payment_id: uuid.UUID, now: datetime) -> None:
    await conn.execute(MARK_RECONCILED, payment_id, now)


async def claim_webhook_event(
    conn: Connection,
    *,
    provider: str,
    event_id: str,
    event_type: str,
    payload: dict[str, Any],
    now: datetime,
    token: uuid.UUID,
    lease_s: float,
) -> WebhookClaim:
    """Claim the event for `lease_s` under `token`, or say who has it: "claimed" (this delivery
    processes it), "processed" (a duplicate) or "in_progress" (another delivery holds a live claim)."""
    row = await conn.fetchrow(CLAIM_WEBHOOK_EVENT, provider, event_id, event_type, payload, now, token, lease_s)
    assert row is not None
    if row["claimed"]:
        return "claimed"
    return "processed" if row["processed"] else "in_progress"


async def release_webhook_event(conn: Connection, provider: str, event_id: str, token: uuid.UUID) -> None:
    """Give up this delivery's claim (its processing failed), so a retry can process the event at once."""
    await conn.execute(RELEASE_WEBHOOK_EVENT, provider, event_id, token)


async def mark_webhook_event_processed(conn: Connection, provider: str, event_id: str, now: datetime) -> None:
    await conn.execute(MARK_WEBHOOK_EVENT_PROCESSED, provider, event_id, now)


async def insert_refund(
    conn: Connection, *, payment_id: uuid.UUID, attempt: int, idempotency_key: str, amount_minor: int, reason: str
) -> Refund | None:
    """The new refund, or None when the payment already has a live one (or this attempt)."""
    row = await conn.fetchrow(INSERT_REFUND, payment_id, idempotency_key, amount_minor, reason, attempt)
    return None if row is None else _refund(row)


async def lock_refund(conn: Connection, *, provider_refund_id: str, idempotency_key: str | None) -> Refund | None:
    row = await conn.fetchrow(LOCK_REFUND_BY_PROVIDER_ID, provider_refund_id, idempotency_key)
    return None if row is None else _refund(row)


async def update_refund(
    conn: Connection,
    refund_id: uuid.UUID,
    *,
    provider_refund_id: str | None,
    status: str,
    raw: dict[str, Any],
    now: datetime,
    allowed_from: tuple[str, ...],
) -> Refund | None:
    row = await conn.fetchrow(UPDATE_REFUND, refund_id, provider_refund_id, status, raw, now, list(allowed_from))
    return None if row is None else _refund(row)


async def unsent_refunds(conn: Connection, *, created_before: datetime, limit: int) -> list[Refund]:
    return [_refund(row) for row in await conn.fetch(SELECT_UNSENT_REFUNDS, created_before, limit)]


async def unrefunded_payments(conn: Connection, booking_ids: list[uuid.UUID], *, max_attempts: int) -> list[Payment]:
    return [_payment(row) for row in await conn.fetch(SELECT_UNREFUNDED_PAYMENTS, booking_ids, max_attempts)]


async def refund_attempts(conn: Connection, payment_id: uuid.UUID) -> tuple[int, int]:
    """(live refunds, all attempts) of a payment; a live refund is one not failed."""
    row = await conn.fetchrow(SELECT_REFUND_ATTEMPTS, payment_id)
    assert row is not None
    return int(row["live"]), int(row["attempts"])


async def recently_succeeded(conn: Connection, *, since: datetime, before: datetime, limit: int) -> list[Payment]:
    rows = await conn.fetch(SELECT_RECENTLY_SUCCEEDED, since, before, limit)
    return [_payment(row) for row in rows]
