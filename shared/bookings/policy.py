"""Price and the refund/reschedule policy a booking snapshots when it is made. Pure, no I/O.

The snapshot is stored on the booking (`bookings.policy`, and `commission_bps` in its own column)
and shown in every booking response, so a client can show the terms before paying and later
changes to the platform's settings or the mentor's rate never alter an existing booking.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.config import Settings

CancelledBy = Literal["student", "mentor", "admin"]
NoShowParty = Literal["student", "mentor"]


class Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    commission_bps: int = Field(ge=0, le=10_000)
    # A student who cancels at or before start - this gets a full refund, later the late percent.
    full_refund_cutoff_hours: int = Field(ge=0)
    late_cancel_refund_percent: int = Field(ge=0, le=100)
    # Rescheduling is possible while now <= start - this.
    reschedule_cutoff_hours: int = Field(ge=0)
    # How long an unpaid booking holds its slot.
    hold_minutes: int = Field(ge=1)

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            commission_bps=settings.platform_commission_bps,
            full_refund_cutoff_hours=settings.booking_full_refund_cutoff_hours,
            late_cancel_refund_percent=settings.booking_late_cancel_refund_percent,
            reschedule_cutoff_hours=settings.booking_reschedule_cutoff_hours,
            hold_minutes=settings.booking_hold_minutes,
        )

    def snapshot(self) -> dict[str, Any]:
        """The JSON stored on the booking."""
        return self.model_dump()

    def hold_expires_at(self, now: datetime) -> datetime:
        return now + timedelta(minutes=self.hold_minutes)

    def may_reschedule(self, start: datetime, now: datetime) -> bool:
        """True up to and including the instant start - cutoff."""
        return now <= start - timedelta(hours=self.reschedule_cutoff_hours)

    def cancellation_refund(
        self,
        price_minor: int,
        *,
        paid: bool,
        cancelled_by: CancelledBy,
        start: datetime,
        now: datetime,
        time_set_by_other_party: bool = False,
    ) -> int:
        """The refund due when the booking is cancelled by `cancelled_by` at `now`.

        Nothing was paid while a booking awaits payment, so nothing is due. A mentor or admin
        cancellation refunds in full. A student gets a full refund up to and including start -
        cutoff and the late percent after it, rounded down to the minor unit, except when the
        booking's current time was set by somebody else (`time_set_by_other_party`: its latest
        reschedule was made by the mentor or an admin): the student never agreed to that time, so
        a mentor cannot move a session into the student's late window and keep the money; the
        refund is then in full whenever the student cancels (before the start; see states.py).
        """
        if not paid:
            return 0
        if (
            cancelled_by != "student"
            or time_set_by_other_party
            or now <= start - timedelta(hours=self.full_refund_cutoff_hours)
        ):
            return price_minor
        return price_minor * self.late_cancel_refund_percent // 100

    @staticmethod
    def no_show_refund(price_minor: int, party: NoShowParty) -> int:
        """A mentor who did not show refunds the student in full; a student who did not show gets nothing."""
        return price_minor if party == "mentor" else 0


def session_price_minor(hourly_rate_minor: int, minutes: int) -> int:
    """hourly rate * minutes / 60 in integer minor units, rounded half up (e.g. 45 min at 999 → 749)."""
    return (hourly_rate_minor * minutes * 2 + 60) // 120
