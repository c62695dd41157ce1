"""The booking-to-payment orchestration (instance id = booking id) and its activities.

    create the provider order (retried on 5xx/timeouts; when retries run out the booking expires)
    -> wait for PaymentConfirmed | PaymentFailed | the hold's durable timer
    -> confirm the booking, or expire it and cancel the provider order where the provider allows

The orchestrator is replayed, so it only uses its input, activity results and
`context.current_utc_datetime`; every read and write happens in the activities, which are
idempotent (each re-reads the rows), because activities run at least once.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df

from shared import resources
from shared.config import get_settings
from shared.payments import service
from shared.payments.states import PAID

bp = df.Blueprint()

ORCHESTRATOR = "booking_payment"
CREATE_ORDER = "payments_create_order"
CONFIRM = "payments_confirm_booking"
RELEASE = "payments_release_booking"

# Provider 5xx/timeouts: 4 attempts, 5 s apart, well inside the hold.
ORDER_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=4)
# Confirming or releasing only touches our database (and a best-effort provider cancel): a few
# retries ride out a database hiccup; the bookings' hold sweeper is the last resort.
SETTLE_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=3)


def start_input(booking_id: uuid.UUID) -> dict[str, Any]:
    return {"booking_id": str(booking_id)}


@bp.orchestration_trigger(context_name="context", orchestration=ORCHESTRATOR)  # type: ignore[untyped-decorator]
def booking_payment(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    booking_id = context.get_input()["booking_id"]
    context.set_custom_status({"state": "creating_order"})
    try:
        created = yield context.call_activity_with_retry(CREATE_ORDER, ORDER_RETRY, booking_id)
    except Exception:
        created = {"error": "provider_unavailable"}
    if "error" in created:
        result = yield context.call_activity_with_retry(
            RELEASE, SETTLE_RETRY, {"booking_id": booking_id, "reason": created["error"]}
        )
        context.set_custom_status({"state": "released", "reason": created["error"]})
        return dict(result)

    checkout = created["checkout"]
    if checkout["payment_status"] in PAID:
        # The payment already succeeded (a restarted flow): confirm at once.
        result = yield context.call_activity_with_retry(CONFIRM, SETTLE_RETRY, booking_id)
        context.set_custom_status({"state": result["booking_status"]})
        return dict(result)

    context.set_custom_status({"state": "awaiting_payment", "checkout": checkout})
    # The booking's hold_expires_at, read by the activity: the same instant whenever this replays.
    timer = context.create_timer(datetime.fromisoformat(created["hold_until"]))
    paid = context.wait_for_external_event(service.PAYMENT_CONFIRMED)
    failed = context.wait_for_external_event(service.PAYMENT_FAILED)
    winner = yield context.task_any([paid, failed, timer])
    if winner != timer:
        timer.cancel()
    if winner == paid:
        result = yield context.call_activity_with_retry(CONFIRM, SETTLE_RETRY, booking_id)
    else:
        reason = "payment_failed" if winner == failed else "hold_expired"
        result = yield context.call_activity_with_retry(
            RELEASE, SETTLE_RETRY, {"booking_id": booking_id, "reason": reason}
        )
    context.set_custom_status({"state": result["booking_status"]})
    return dict(result)


@bp.activity_trigger(input_name="booking_id", activity=CREATE_ORDER)  # type: ignore[untyped-decorator]
async def payments_create_order(booking_id: str) -> dict[str, Any]:
    database = await resources.get_database()
    return await service.create_order(database, get_settings(), uuid.UUID(booking_id), now=datetime.now(UTC))


@bp.activity_trigger(input_name="booking_id", activity=CONFIRM)  # type: ignore[untyped-decorator]
async def payments_confirm_booking(booking_id: str) -> dict[str, Any]:
    database, cache = await resources.get_database(), await resources.get_cache()
    return await service.confirm_paid_booking(
        database, cache, get_settings(), uuid.UUID(booking_id), now=datetime.now(UTC)
    )


@bp.activity_trigger(input_name="release", activity=RELEASE)  # type: ignore[untyped-decorator]
async def payments_release_booking(release: dict) -> dict[str, Any]:  # type: ignore[type-arg]
    # A bare `dict`: the worker's indexing refuses builtin generics (dict[str, str]) on bindings.
    database, cache = await resources.get_database(), await resources.get_cache()
    return await service.release_booking(
        database,
        cache,
        get_settings(),
        uuid.UUID(release["booking_id"]),
        reason=release["reason"],
        now=datetime.now(UTC),
    )
