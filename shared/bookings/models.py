"""HTTP boundary models for bookings."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.bookings.policy import NoShowParty, Policy
from shared.bookings.states import Status
from shared.http.cursor import CursorParam
from shared.mentors.models import Money
from shared.models import BoundedDatetime, Text

Notes = Annotated[Text, StringConstraints(max_length=2000)]
Reason = Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
ParticipantRole = Literal["student", "mentor"]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BookingCreate(Input):
    mentor_id: uuid.UUID
    start: BoundedDatetime
    length_minutes: Annotated[int, Field(ge=15, le=480)]
    notes: Notes = ""


class RescheduleRequest(Input):
    start: BoundedDatetime
    reason: Reason | None = None


class CancelRequest(Input):
    reason: Reason


class StatusUpdate(Input):
    """PATCH .../status. `no_show_party` goes with no_show; `reason` with cancelled, where it is
    required, as for POST .../cancel, so every cancellation records why."""

    status: Status
    no_show_party: NoShowParty | None = None
    reason: Reason | None = None

    @model_validator(mode="after")
    def _fields_fit_status(self) -> StatusUpdate:
        if self.no_show_party is not None and self.status != "no_show":
            raise ValueError("no_show_party goes only with status no_show")
        if self.reason is not None and self.status != "cancelled":
            raise ValueError("reason goes only with status cancelled")
        if self.reason is None and self.status == "cancelled":
            raise ValueError("status cancelled needs a reason")
        return self


class BookingQuery(Input):
    role: ParticipantRole | None = None
    status: Status | None = None
    start: Annotated[BoundedDatetime | None, Field(alias="from")] = None
    end: Annotated[BoundedDatetime | None, Field(alias="to")] = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    cursor: CursorParam | None = None

    @model_validator(mode="after")
    def _range(self) -> BookingQuery:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("'to' must be after 'from'")
        return self


class Cancellation(BaseModel):
    by: uuid.UUID
    role: Literal["student", "mentor", "admin"]
    reason: str | None
    at: datetime


class Booking(BaseModel):
    id: uuid.UUID
    student_id: uuid.UUID
    mentor_id: uuid.UUID
    start: datetime
    end: datetime
    length_minutes: int
    status: Status
    price: Money
    commission_bps: int
    # The refund and reschedule terms this booking was made under (see shared/bookings/policy.py).
    policy: Policy
    notes: str
    hold_expires_at: datetime | None
    # When the booking became confirmed (paid, or free and so confirmed when made); kept afterwards.
    confirmed_at: datetime | None
    cancellation: Cancellation | None
    # Set on cancellation and no-show: what the payment flow refunds, in the price's currency.
    refund_due_minor: int | None
    no_show_party: NoShowParty | None
    reschedule_count: int
    created_at: datetime
    updated_at: datetime


class BookingsPage(BaseModel):
    data: list[Booking]
    next_cursor: str | None
