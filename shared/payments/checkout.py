"""Starting a booking's payment flow and answering with what the client needs to pay.

Why the route starts the orchestration and then waits briefly for the payment row (instead of
creating the provider order before starting): the order is created by an activity, so provider
5xx/timeouts are retried durably (RetryOptions) and, when retries run out, the same orchestration
expires the booking cleanly; nothing depends on the HTTP request surviving. The route waits up to
PAYMENT_CHECKOUT_WAIT_SECONDS for the row the activity writes (the database, not the
orchestration's custom status, is the source of truth); a slow provider gets 202 and the client
polls GET /api/bookings/{id}/payment.

Instance id = booking id. An existing instance is never replaced (`start_new` would silently
replace it): its current state is reported instead.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from shared.config import Settings
from shared.db.database import Database
from shared.errors import NotFound
from shared.payments import repository as repo
from shared.payments import service
from shared.payments.models import CheckoutState
from shared.payments.orchestration import ORCHESTRATOR, start_input

logger = logging.getLogger(__name__)

_POLL_S = 0.05


async def start_checkout(client: Any, database: Database, settings: Settings, booking_id: uuid.UUID) -> CheckoutState:
    """Start the booking's payment orchestration unless one exists, then report the checkout."""
    instance_id = str(booking_id)
    if not await client.get_status(instance_id):
        state = await checkout_state(database, settings, booking_id)
        if state.booking_status != "pending_payment":
            raise service.BookingNotPayable()
        try:
            await client.start_new(ORCHESTRATOR, instance_id, start_input(booking_id))
        except Exception:
            # A concurrent request started it first (the host refuses a second running instance).
            if not await client.get_status(instance_id):
                raise
            logger.info("payment flow for booking %s was started concurrently", booking_id)
    return await wait_for_checkout(database, settings, booking_id, settings.payment_checkout_wait_s)


async def checkout_for_new_booking(
    client: Any, database: Database, settings: Settings, booking_id: uuid.UUID
) -> dict[str, Any] | None:
    """createBooking's `payment` field: the checkout (None while the provider order is still being
    made, or if the flow could not start; POST /api/bookings/{id}/payment retries, the hold sweeper
    frees the slot)."""
    try:
        state = await start_checkout(client, database, settings, booking_id)
    except Exception:
        logger.exception("could not start the payment flow of booking %s", booking_id)
        return None
    return None if state.checkout is None else state.checkout.model_dump(mode="json")


async def wait_for_checkout(
    database: Database, settings: Settings, booking_id: uuid.UUID, wait_s: float
) -> CheckoutState:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        state = await checkout_state(database, settings, booking_id)
        if state.checkout is not None or state.booking_status != "pending_payment" or loop.time() >= deadline:
            return state
        await asyncio.sleep(_POLL_S)


async def checkout_state(database: Database, settings: Settings, booking_id: uuid.UUID) -> CheckoutState:
    async with database.connection() as conn:
        booking = await repo.booking(conn, booking_id)
        payment = await repo.payment_for_booking(conn, booking_id)
    if booking is None:
        raise NotFound("no such booking")
    checkout = None
    if payment is not None:
        checkout = service.checkout_of(payment, service.make_provider(payment.provider, settings))
    return CheckoutState(booking_id=booking_id, booking_status=booking.status, checkout=checkout)
