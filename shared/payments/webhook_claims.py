"""One delivery of a webhook event processes it; identical deliveries never hold a database connection
while they wait for it.

A delivery claims the event id for a lease in one short statement (shared/payments/repository.py),
processes the event with connections of its own, and marks it processed. An identical delivery that
finds the event processed is a duplicate (2xx). One that finds a live claim polls, holding no
connection between polls, for up to WEBHOOK_DUPLICATE_WAIT_SECONDS: when the first finishes it is a
duplicate too; when the first fails (its claim is released) or died (its lease ran out), it claims
and processes the event itself. Only if the first is still busy after the wait is it answered 503 +
Retry-After: a 2xx would tell Razorpay and Stripe the event was delivered, and if the first then
failed, no one would ever deliver it again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from shared.config import Settings
from shared.db.database import Database
from shared.errors import ServiceUnavailable
from shared.payments import repository as repo

logger = logging.getLogger(__name__)

FIRST_POLL_PAUSE_S = 0.02
MAX_POLL_PAUSE_S = 0.25
IN_PROGRESS_RETRY_AFTER_S = 10
_JITTER = random.Random()  # a pause length, not a secret


class EventInProgress(ServiceUnavailable):
    code = "event_in_progress"
    title = "Another delivery of this event is being processed"

    def __init__(self) -> None:
        super().__init__(
            "another delivery of this event is still being processed; retry later",
            retry_after_s=IN_PROGRESS_RETRY_AFTER_S,
        )


@asynccontextmanager
async def claimed_webhook_event(
    database: Database,
    settings: Settings,
    *,
    provider: str,
    event_id: str,
    event_type: str,
    payload: dict[str, Any],
    now: datetime,
) -> AsyncIterator[bool]:
    """Yield True when this delivery must process the event, False when another delivery processed it.

    Raises EventInProgress when another delivery still holds the event after the wait. If the
    caller's processing raises, the claim is released, so a retry or a waiting duplicate can process
    the event at once; if this process dies, the claim runs out after WEBHOOK_CLAIM_LEASE_SECONDS.
    """
    token = uuid.uuid4()
    if not await _claim(database, settings, provider, event_id, event_type, payload, now, token):
        yield False
        return
    try:
        yield True
        async with database.connection() as conn:
            await repo.mark_webhook_event_processed(conn, provider, event_id, now)
    except BaseException:
        await _release(database, provider, event_id, token)
        raise


async def _claim(
    database: Database,
    settings: Settings,
    provider: str,
    event_id: str,
    event_type: str,
    payload: dict[str, Any],
    now: datetime,
    token: uuid.UUID,
) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.webhook_duplicate_wait_s
    pause = FIRST_POLL_PAUSE_S
    while True:
        async with database.connection() as conn:
            state = await repo.claim_webhook_event(
                conn,
                provider=provider,
                event_id=event_id,
                event_type=event_type,
                payload=payload,
                now=now,
                token=token,
                lease_s=settings.webhook_claim_lease_s,
            )
        if state != "in_progress":
            return state == "claimed"
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise EventInProgress()
        await asyncio.sleep(min(remaining, pause * _JITTER.uniform(0.5, 1.0)))
        pause = min(pause * 2, MAX_POLL_PAUSE_S)


async def _release(database: Database, provider: str, event_id: str, token: uuid.UUID) -> None:
    try:
        async with database.connection() as conn:
            await repo.release_webhook_event(conn, provider, event_id, token)
    except Exception as exc:
        logger.warning("could not release the claim on %s event %s (its lease runs out): %s", provider, event_id, exc)
