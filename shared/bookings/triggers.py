"""Booking routes and the housekeeping timer. `{id:guid}` keeps literal segments from matching ids."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from datetime import UTC, datetime, timedelta

import azure.functions as func

from shared import idempotency, resources
from shared.bookings import service
from shared.bookings.models import Booking, BookingCreate, BookingQuery, CancelRequest, RescheduleRequest, StatusUpdate
from shared.bookings.policy import Policy
from shared.config import get_settings
from shared.http.auth import AUTHENTICATED, roles
from shared.http.endpoint import ApiRequest, blueprint, endpoint
from shared.http.idempotency import to_response
from shared.payments.checkout import checkout_for_new_booking
from shared.payments.service import refund_after_booking_ended

logger = logging.getLogger(__name__)

bp = blueprint()


@endpoint(
    bp,
    name="create_booking",
    route="bookings",
    method="POST",
    auth=roles("student"),
    body=BookingCreate,
    status=201,
    durable_client=True,
)
async def create_booking(request: ApiRequest[BookingCreate]) -> func.HttpResponse:
    assert request.body is not None
    key = idempotency.key_from_headers(
        request.http.headers, user_id=request.user.user_id, operation=service.CREATE_OPERATION, body=request.body
    )
    database, settings = await resources.get_database(), get_settings()
    outcome = await service.create_booking(
        database,
        await resources.get_cache(),
        request.user.user_id,
        request.body,
        policy=Policy.from_settings(settings),
        now=datetime.now(UTC),
        idempotency_key=key,
    )
    if outcome.status == 201:
        # The payment flow starts with the booking (a replay finds it running; a free booking is
        # confirmed already and has none); see shared/payments/checkout.py.
        payment = None
        if outcome.body["status"] == "pending_payment":
            booking_id = uuid.UUID(outcome.body["id"])
            payment = await checkout_for_new_booking(request.durable, database, settings, booking_id)
        outcome = dataclasses.replace(outcome, body={**outcome.body, "payment": payment})
    return to_response(outcome)


@endpoint(bp, name="list_bookings", route="bookings", method="GET", auth=roles("student", "mentor"))
async def list_bookings(request: ApiRequest[None]) -> bytes:
    query = BookingQuery.model_validate(dict(request.query))
    db, cache = await resources.get_database(), await resources.get_cache()
    return await service.list_bookings(db, cache, request.user, query)


@endpoint(bp, name="get_booking", route="bookings/{id:guid}", method="GET", auth=AUTHENTICATED)
async def get_booking(request: ApiRequest[None]) -> Booking:
    return await service.get_booking(await resources.get_database(), request.user, request.route_id())


@endpoint(
    bp,
    name="reschedule_booking",
    route="bookings/{id:guid}/reschedule",
    method="POST",
    auth=AUTHENTICATED,
    body=RescheduleRequest,
)
async def reschedule_booking(request: ApiRequest[RescheduleRequest]) -> Booking:
    assert request.body is not None
    db, cache = await resources.get_database(), await resources.get_cache()
    return await service.reschedule_booking(
        db, cache, request.user, request.route_id(), request.body, now=datetime.now(UTC)
    )


@endpoint(
    bp, name="cancel_booking", route="bookings/{id:guid}/cancel", method="POST", auth=AUTHENTICATED, body=CancelRequest
)
async def cancel_booking(request: ApiRequest[CancelRequest]) -> Booking:
    assert request.body is not None
    db, cache = await resources.get_database(), await resources.get_cache()
    cancelled = await service.cancel_booking(
        db, cache, request.user, request.route_id(), request.body.reason, now=datetime.now(UTC)
    )
    await refund_after_booking_ended(db, get_settings(), cancelled.id)
    return cancelled


@endpoint(
    bp,
    name="update_booking_status",
    route="bookings/{id:guid}/status",
    method="PATCH",
    auth=roles("mentor", "admin"),
    body=StatusUpdate,
)
async def update_booking_status(request: ApiRequest[StatusUpdate]) -> Booking:
    assert request.body is not None
    db, cache = await resources.get_database(), await resources.get_cache()
    updated = await service.update_status(
        db, cache, request.user, request.route_id(), request.body, now=datetime.now(UTC)
    )
    if updated.status in ("cancelled", "no_show"):
        await refund_after_booking_ended(db, get_settings(), updated.id)
    return updated


@bp.function_name("expire_stale_holds")
@bp.timer_trigger(schedule="0 * * * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
async def expire_stale_holds(timer: func.TimerRequest) -> None:
    """Every minute: expire unpaid bookings whose hold ended (the payment orchestration's backstop)
    and forget Idempotency-Keys past their retention. Compares with the wall clock, as the database
    rows were written with it."""
    if timer.past_due:
        logger.info("housekeeping runs late (the host was down or busy)")
    db, cache = await resources.get_database(), await resources.get_cache()
    now = datetime.now(UTC)
    expired = await service.expire_stale_holds(db, cache, now=now)
    retention = timedelta(hours=get_settings().idempotency_key_retention_hours)
    purged = await service.purge_idempotency_keys(db, older_than=now - retention)
    if expired or purged:
        logger.info("housekeeping: %d holds expired, %d idempotency keys purged", expired, purged)
