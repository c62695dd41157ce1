"""Response bodies of the participants' dashboards: student stats and mentor stats."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class CurrencyTotal(BaseModel):
    currency: str
    amount_minor: int = Field(description="In the currency's minor unit (paise, cents)")


class StudentStats(BaseModel):
    as_of: datetime = Field(description="The time the figures were computed for (cached up to 2 minutes)")
    sessions_completed: int
    upcoming: int = Field(description="Bookings pending payment or confirmed whose start is after as_of")
    hours_completed: float = Field(description="Booked length of the completed sessions, in hours (2 decimals)")
    spend: list[CurrencyTotal] = Field(
        description=(
            "Per currency, what the student paid and was not refunded: for bookings that are confirmed, "
            "completed or no-show, and for cancelled bookings that had been paid (confirmed_at set) and of which "
            "the policy kept part (a late cancellation), the snapshotted price less the refund the policy granted "
            "(refund_due_minor), if any. Pending and expired bookings, unpaid cancellations and fully refunded "
            "ones are not counted. One entry per currency with such a booking."
        )
    )


class MentorStats(BaseModel):
    as_of: datetime = Field(description="The time the figures were computed for (cached up to 2 minutes)")
    sessions_completed: int
    upcoming: int = Field(description="Bookings pending payment or confirmed whose start is after as_of")
    hours_completed: float = Field(description="Booked length of the completed sessions, in hours (2 decimals)")
    earnings: list[CurrencyTotal] = Field(
        description=(
            "Per currency, the mentor's share of completed bookings and of bookings the student did not show up "
            "for, at the snapshotted price, and of paid cancellations of which the policy kept part (a late "
            "cancellation), at the kept amount (price less refund_due_minor); each less the platform commission "
            "on that amount, amount * commission_bps / 10000 rounded half up to a whole minor unit. One entry "
            "per currency with such a booking."
        )
    )
    rating: float = Field(description="Average of the mentor's reviews (2 decimals); 0 with no reviews")
    rating_count: int
