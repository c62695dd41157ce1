"""Reconciliation: what webhooks may have missed, settled from the provider's own records.

- local payments still created/pending (and failed Razorpay payments of the last days, which may be
  authorised late) are fetched from the provider; a payment that succeeded or failed there is
  applied as a webhook would be, and the booking's orchestration is told (or, when
  it no longer runs, the booking is confirmed or released directly: both are idempotent);
- refunds written but never accepted by the provider are sent again with their idempotency key;
- paid bookings that ended and owe money back without a live refund (a crash after a cancellation,
  a late payment whose webhook never came, a refund the provider failed) get their refund: a new
  attempt with its own idempotency key, at most service.MAX_REFUND_ATTEMPTS in all.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df

from shared.bookings import repository as bookings_repo
from shared.cache.cache import Cache
from shared.config import Settings
from shared.db.database import Database
from shared.payments import repository as repo
from shared.payments import service
from shared.payments.provider import ProviderRejected, ProviderUnavailable
from shared.payments.states import PAYMENT_MOVES

logger = logging.getLogger(__name__)

BATCH = 50
# Provider look-ups per run at most; the least recently asked go first, so none is starved.
MAX_CHECKS_PER_RUN = 500
# Razorpay keeps polling the bank for up to 3 days, so a failed order may still be paid late.
LATE_AUTHORISATION_WINDOW = timedelta(days=5)
# A booking whose payment succeeded this long ago and is still awaiting payment has a lost
# PaymentConfirmed; older ones were expired by the hold sweeper and are refunded instead.
PAID_PENDING_WINDOW = timedelta(days=1)
# Ended bookings (cancelled, no-show, expired) are checked for refunds owed for this long after
# they ended, in pages, at most this many pages per run.
REFUND_LOOKBACK = timedelta(days=30)
ENDED_PAGE = 500
MAX_ENDED_PAGES = 20


@dataclass
class Reconciled:
    payments_checked: int = 0
    payments_settled: int = 0
    refunds_resent: int = 0
    refunds_started: int = 0


async def reconcile(database: Database, cache: Cache, settings: Settings, client: Any, *, now: datetime) -> Reconciled:
    report = Reconciled()
    steps = (_check_unsettled_payments, _confirm_paid_bookings, _resend_unsent_refunds, _start_owed_refunds)
    for step in steps:
        try:
            await step(database, cache, settings, client, report, now=now)
        except Exception:  # one step's trouble never stops the others; the next run tries again
            logger.exception("payment reconciliation step %s failed", step.__name__)
    logger.info("payments reconciled: %s", report)
    return report


async def _check_unsettled_payments(
    database: Database, cache: Cache, settings: Settings, client: Any, report: Reconciled, *, now: datetime
) -> None:
    while report.payments_checked < MAX_CHECKS_PER_RUN:
        async with database.connection() as conn:
            stale = await repo.stale_payments(
                conn,
                created_before=now - timedelta(seconds=settings.payment_reconcile_min_age_s),
                failed_since=now - LATE_AUTHORISATION_WINDOW,
                asked_before=now,
                limit=BATCH,
            )
        if not stale:
            break
        for payment in stale:
            report.payments_checked += 1
            try:
                if await _reconcile_payment(database, cache, settings, client, payment, now=now):
                    report.payments_settled += 1
            except Exception:  # one payment's trouble never stops the others; it is asked again next run
                logger.exception("reconciling payment %s failed", payment.id)
            async with database.connection() as conn:
                await repo.mark_reconciled(conn, payment.id, now)


async def _confirm_paid_bookings(
    database: Database, cache: Cache, settings: Settings, client: Any, report: Reconciled, *, now: datetime
) -> None:
    for booking_id in await _paid_pending_bookings(database, settings, now=now):
        try:
            await _tell(database, cache, settings, client, booking_id, service.PAYMENT_CONFIRMED, "succeeded", now=now)
            report.payments_settled += 1
        except Exception:
            logger.exception("confirming the paid booking %s failed", booking_id)


async def _resend_unsent_refunds(
    database: Database, cache: Cache, settings: Settings, client: Any, report: Reconciled, *, now: datetime
) -> None:
    del cache, client
    async with database.connection() as conn:
        unsent = await repo.unsent_refunds(conn, created_before=now, limit=BATCH)
    for refund in unsent:
        async with database.connection() as conn:
            refunded = await repo.payment(conn, refund.payment_id)
        if refunded is not None:
            await service.send_refund(database, settings, refund, refunded, now=now)
            report.refunds_resent += 1


async def _start_owed_refunds(
    database: Database, cache: Cache, settings: Settings, client: Any, report: Reconciled, *, now: datetime
) -> None:
    del cache, client
    for booking_id in await _bookings_owed_refunds(database, now=now):
        try:
            if await service.settle_refund(database, settings, booking_id, now=now):
                report.refunds_started += 1
        except Exception:  # one booking's trouble never stops the others
            logger.exception("refunding booking %s failed", booking_id)


async def _paid_pending_bookings(database: Database, settings: Settings, *, now: datetime) -> list[uuid.UUID]:
    """Bookings still awaiting payment although their payment succeeded (a lost PaymentConfirmed)."""
    async with database.connection() as conn:
        paid = await repo.recently_succeeded(
            conn,
            since=now - PAID_PENDING_WINDOW,
            before=now - timedelta(seconds=settings.payment_reconcile_min_age_s),
            limit=MAX_CHECKS_PER_RUN,
        )
        statuses = await bookings_repo.fetch_statuses(conn, [p.booking_id for p in paid])
    return [booking_id for booking_id, status in statuses.items() if status == "pending_payment"]


async def _bookings_owed_refunds(database: Database, *, now: datetime) -> list[uuid.UUID]:
    """Bookings that ended lately whose payment holds money without a live refund (settle_refund
    then decides, per booking, whether any of it is owed back)."""
    candidates: list[uuid.UUID] = []
    after = None
    async with database.connection() as conn:
        for _ in range(MAX_ENDED_PAGES):
            page = await bookings_repo.fetch_ended_since(conn, now - REFUND_LOOKBACK, after=after, limit=ENDED_PAGE)
            if not page:
                break
            last_id, last_at = page[-1]
            after = (last_at, last_id)
            payments = await repo.unrefunded_payments(
                conn, [booking_id for booking_id, _ in page], max_attempts=service.MAX_REFUND_ATTEMPTS
            )
            candidates += [p.booking_id for p in payments]
    return candidates


async def _reconcile_payment(
    database: Database, cache: Cache, settings: Settings, client: Any, payment: repo.Payment, *, now: datetime
) -> bool:
    try:
        found = await service.make_provider(payment.provider, settings).fetch(payment.provider_id)
    except (ProviderUnavailable, ProviderRejected) as exc:
        logger.warning("could not reconcile %s %s: %s", payment.provider, payment.provider_id, exc)
        return False
    if found.state in ("created", "failed"):
        async with database.connection() as conn:
            booking = await repo.booking(conn, payment.booking_id)
        if booking is None or booking.status != "pending_payment":
            # The hold is over and nothing was paid: make sure nothing can be paid any more.
            if found.closed:
                async with database.transaction() as conn:
                    await repo.advance_payment(
                        conn, payment.id, to="failed", allowed_from=PAYMENT_MOVES["failed"], now=now
                    )
                    await repo.mark_closed(conn, payment.id, now)
                return True
            return await service.close_unpaid(database, settings, payment, now=now)
        if found.state == "created" or payment.status == "failed":
            return False
    update = service.PaymentUpdate(
        payment.provider, payment.provider_id, found.state, found.provider_payment_id, found.raw
    )
    follow_up = await service.apply_payment_update(database, settings, update, now=now)
    if follow_up.event is None or follow_up.booking_id is None:
        return True
    await _tell(
        database, cache, settings, client, follow_up.booking_id, follow_up.event, follow_up.payment_status, now=now
    )
    return True


async def _tell(
    database: Database,
    cache: Cache,
    settings: Settings,
    client: Any,
    booking_id: uuid.UUID,
    event: str,
    payment_status: str | None,
    *,
    now: datetime,
) -> None:
    """Raise the event on the booking's orchestration, or act on it directly when that no longer runs."""
    instance_id = str(booking_id)
    status = await client.get_status(instance_id)
    if status and status.runtime_status == df.OrchestrationRuntimeStatus.Running:
        await client.raise_event(instance_id, event, {"payment": payment_status})
    elif event == service.PAYMENT_CONFIRMED:
        await service.confirm_paid_booking(database, cache, settings, booking_id, now=now)
    else:
        await service.release_booking(database, cache, settings, booking_id, reason="payment_failed", now=now)
