"""The two booking transitions the payment flow drives, through the bookings feature's own service:
pending_payment -> confirmed | expired.

Each returns the booking's status afterwards, so the caller can tell "done now or before" from
"the booking has moved on" (cancelled, expired, confirmed) and compensate (refund): the bookings
service refuses any other transition with InvalidTransition.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from shared.bookings import service as bookings
from shared.bookings.states import InvalidTransition
from shared.cache.cache import Cache
from shared.db.database import Database
from shared.payments import repository as repo


async def _status(database: Database, booking_id: uuid.UUID) -> str | None:
    async with database.connection() as conn:
        booking = await repo.booking(conn, booking_id)
    return None if booking is None else booking.status


async def confirm(database: Database, cache: Cache, booking_id: uuid.UUID, *, now: datetime) -> str | None:
    """Confirm a pending_payment booking; its status afterwards (None if it does not exist)."""
    try:
        return (await bookings.confirm_booking(database, cache, booking_id, now=now)).status
    except (InvalidTransition, bookings.BookingNotFound):
        return await _status(database, booking_id)


async def expire(database: Database, cache: Cache, booking_id: uuid.UUID, *, now: datetime) -> str | None:
    """Expire a pending_payment booking (its slot is free again); its status afterwards."""
    try:
        return (await bookings.expire_booking(database, cache, booking_id, now=now)).status
    except (InvalidTransition, bookings.BookingNotFound):
        return await _status(database, booking_id)
