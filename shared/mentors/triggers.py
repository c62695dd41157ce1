"""Mentor routes. `{id:guid}` keeps `mentors/me` and `mentors/{id}` from matching the same request."""

from __future__ import annotations

from datetime import UTC, datetime

from shared import resources
from shared.http.auth import ANONYMOUS, roles
from shared.http.endpoint import ApiRequest, blueprint, endpoint
from shared.mentors import service
from shared.mentors.models import (
    ActivationUpdate,
    Availability,
    MentorCreate,
    MentorPrivate,
    MentorPublic,
    MentorQuery,
    MentorUpdate,
    Money,
    SlotQuery,
    SlotsPublic,
    UpiIdUpdate,
)

bp = blueprint()
MENTOR = roles("mentor")


@endpoint(bp, name="create_mentor", route="mentors", method="POST", auth=MENTOR, body=MentorCreate, status=201)
async def create_mentor(request: ApiRequest[MentorCreate]) -> MentorPrivate:
    assert request.body is not None
    db, cache = await resources.get_database(), await resources.get_cache()
    return await service.create_mentor(db, cache, request.user.user_id, request.body)


@endpoint(bp, name="list_mentors", route="mentors", method="GET", auth=ANONYMOUS)
async def list_mentors(request: ApiRequest[None]) -> bytes:
    query = MentorQuery.model_validate(dict(request.query))
    return await service.list_mentors(await resources.get_database(), await resources.get_cache(), query)


@endpoint(bp, name="get_own_mentor", route="mentors/me", method="GET", auth=MENTOR)
async def get_own_mentor(request: ApiRequest[None]) -> MentorPrivate:
    return await service.get_own_mentor(await resources.get_database(), request.user.user_id)


@endpoint(bp, name="update_mentor", route="mentors/me", method="PATCH", auth=MENTOR, body=MentorUpdate)
async def update_mentor(request: ApiRequest[MentorUpdate]) -> MentorPrivate:
    assert request.body is not None
    db, cache = await resources.get_database(), await resources.get_cache()
    return await service.update_mentor(db, cache, request.user.user_id, request.body)


@endpoint(bp, name="update_mentor_hourly_rate", route="mentors/me/hourly-rate", method="PUT", auth=MENTOR, body=Money)
async def update_hourly_rate(request: ApiRequest[Money]) -> MentorPrivate:
    assert request.body is not None
    db, cache = await resources.get_database(), await resources.get_cache()
    return await service.update_mentor_hourly_rate(db, cache, request.user.user_id, request.body)


@endpoint(bp, name="update_mentor_upi_id", route="mentors/me/upi-id", method="PUT", auth=MENTOR, body=UpiIdUpdate)
async def update_upi_id(request: ApiRequest[UpiIdUpdate]) -> MentorPrivate:
    assert request.body is not None
    db, cache = await resources.get_database(), await resources.get_cache()
    return await service.update_mentor_upi_id(db, cache, request.user.user_id, request.body.upi_id)


@endpoint(bp, name="get_mentor_availability", route="mentors/me/availability", method="GET", auth=MENTOR)
async def get_availability(request: ApiRequest[None]) -> Availability:
    return await service.get_availability(await resources.get_database(), request.user.user_id)


@endpoint(
    bp, name="set_mentor_availability", route="mentors/me/availability", method="PUT", auth=MENTOR, body=Availability
)
async def set_availability(request: ApiRequest[Availability]) -> Availability:
    assert request.body is not None
    return await service.set_availability(await resources.get_database(), request.user.user_id, request.body)


@endpoint(bp, name="get_mentor", route="mentors/{id:guid}", method="GET", auth=ANONYMOUS)
async def get_mentor(request: ApiRequest[None]) -> MentorPublic:
    return await service.get_mentor(await resources.get_database(), request.route_id())


@endpoint(bp, name="list_mentor_slots", route="mentors/{id:guid}/slots", method="GET", auth=ANONYMOUS)
async def list_slots(request: ApiRequest[None]) -> SlotsPublic:
    query = SlotQuery.model_validate(dict(request.query))
    return await service.list_slots(await resources.get_database(), request.route_id(), query, now=datetime.now(UTC))


@endpoint(
    bp,
    name="set_mentor_active",
    route="admin/mentors/{id:guid}/active",
    method="PUT",
    auth=roles("admin"),
    body=ActivationUpdate,
)
async def set_active(request: ApiRequest[ActivationUpdate]) -> MentorPrivate:
    assert request.body is not None
    db, cache = await resources.get_database(), await resources.get_cache()
    return await service.set_mentor_active(db, cache, request.route_id(), request.body.active)
