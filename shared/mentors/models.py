"""HTTP boundary models for mentors: profiles, prices, UPI ids, availability, discovery and slots."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, time
from functools import cache
from types import MappingProxyType
from typing import Annotated, Literal
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from shared.http.cursor import CursorParam
from shared.mentors.availability import END_OF_DAY
from shared.models import BoundedDate, Text

# A UPI virtual payment address: handle@psp (NPCI: 2-256 of letters, digits, dot, hyphen,
# underscore; the PSP handle is letters then letters/digits).
_VPA = re.compile(r"^[a-z0-9._-]{2,256}@[a-z][a-z0-9]{1,63}$")


# Files a host's zone database may hold that name no IANA zone, or whose meaning depends on the host:
# `localtime` (a link to the host's own zone), `posixrules`, `Factory` ("local time zone must be
# set"), and the `posix/` and `right/` (leap-second) copies of the database.
_NOT_IANA = frozenset({"localtime", "posixrules", "Factory"})


@cache
def _zones() -> frozenset[str]:
    return frozenset(
        zone for zone in available_timezones() if zone not in _NOT_IANA and not zone.startswith(("posix/", "right/"))
    )


def _timezone(value: str) -> str:
    if value not in _zones():
        raise ValueError("not an IANA time zone")
    return value


_SKILL = re.compile(r"^[a-z0-9][a-z0-9+#. -]{0,39}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")


def _tag(pattern: re.Pattern[str], what: str) -> Callable[[str], str]:
    def normalise(value: str) -> str:
        value = value.strip().lower()
        if not pattern.fullmatch(value):
            raise ValueError(f"not a {what}")
        return value

    return normalise


def _vpa(value: str) -> str:
    value = value.strip().lower()
    if not _VPA.fullmatch(value):
        raise ValueError("not a UPI id (name@bank)")
    return value


def _first_of_each(values: list[str]) -> list[str]:
    """Each normalised value once, in first-seen order ("Python", " python" → ["python"])."""
    return list(dict.fromkeys(values))


Timezone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_timezone)]
Vpa = Annotated[str, StringConstraints(max_length=330), AfterValidator(_vpa)]
Skill = Annotated[str, StringConstraints(max_length=40), AfterValidator(_tag(_SKILL, "skill"))]
# BCP 47 language tags, lower-cased: "en", "hi", "pt-br".
Language = Annotated[str, StringConstraints(max_length=12), AfterValidator(_tag(_LANGUAGE, "language tag"))]
Skills = Annotated[list[Skill], Field(max_length=30), AfterValidator(_first_of_each)]
Languages = Annotated[list[Language], Field(max_length=20), AfterValidator(_first_of_each)]
# The ISO 4217 currencies a mentor may price in, with their minor-unit exponent. Amounts are stored
# and handed to the providers unchanged, in the minor unit: Razorpay (INR) takes paise and Stripe
# (every other currency) the currency's smallest unit, which for these equals the ISO minor unit (JPY
# has none: 1000 is ¥1000). Left out on purpose: three-decimal currencies (BHD, JOD, KWD, OMR, TND),
# which Stripe takes only in multiples of 10, and the special cases of Stripe's currency guide whose
# API unit or rounding rules differ from ISO 4217 (ISK, UGX, HUF, TWD). Add a currency only after
# checking both providers; their minimum charges still apply.
ACCEPTED_CURRENCIES: Mapping[str, int] = MappingProxyType(
    {"INR": 2, "USD": 2, "EUR": 2, "GBP": 2, "CAD": 2, "AUD": 2, "SGD": 2, "AED": 2, "JPY": 0}
)


def _accepted_currency(value: str) -> str:
    if value not in ACCEPTED_CURRENCIES:
        raise PydanticCustomError("currency_not_accepted", "not a currency we accept")
    return value


Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"), AfterValidator(_accepted_currency)]
AmountMinor = Annotated[int, Field(ge=0, le=100_000_000)]
Headline = Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Bio = Annotated[Text, StringConstraints(max_length=5000)]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Money(Input):
    """An amount in the currency's minor unit (paise, cents) with its ISO 4217 code."""

    amount_minor: Annotated[StrictInt, Field(ge=0, le=100_000_000)]  # never true, 100.0 or "100"
    currency: Currency


class MentorCreate(Input):
    headline: Headline
    bio: Bio = ""
    skills: Skills = []
    languages: Languages = []
    years_experience: Annotated[int, Field(ge=0, le=80)] = 0
    timezone: Timezone
    hourly_rate: Money
    upi_id: Vpa | None = None


class MentorUpdate(Input):
    headline: Headline | None = None
    bio: Bio | None = None
    skills: Skills | None = None
    languages: Languages | None = None
    years_experience: Annotated[int, Field(ge=0, le=80)] | None = None
    timezone: Timezone | None = None


class UpiIdUpdate(Input):
    upi_id: Vpa


class ActivationUpdate(Input):
    active: StrictBool


_MIDNIGHT_24 = re.compile(r"^24:00(:00(\.0{1,6})?)?$")


def _end_of_day(value: object) -> object:
    return END_OF_DAY if isinstance(value, str) and _MIDNIGHT_24.fullmatch(value) else value


def _show_end(value: time) -> str:
    return "24:00:00" if value == END_OF_DAY else value.isoformat()


# The end of hours: a wall-clock time, or 24:00 (also written 00:00), the midnight that ends the day.
DayEnd = Annotated[time, BeforeValidator(_end_of_day), PlainSerializer(_show_end, when_used="json")]


def _in_order(start: time, end: time) -> bool:
    return start < end or end == END_OF_DAY


class WeeklyHoursIn(Input):
    weekday: Annotated[int, Field(ge=1, le=7)]  # ISO: 1 = Monday … 7 = Sunday
    start: time
    end: DayEnd

    @model_validator(mode="after")
    def _ordered(self) -> WeeklyHoursIn:
        if not _in_order(self.start, self.end) or self.start.tzinfo or self.end.tzinfo:
            raise ValueError("start must be before end, as local wall-clock times")
        return self


class DateOverrideIn(Input):
    """A day off (no times) or extra hours on one local date."""

    date: BoundedDate
    start: time | None = None
    end: DayEnd | None = None

    @model_validator(mode="after")
    def _ordered(self) -> DateOverrideIn:
        if (self.start is None) != (self.end is None):
            raise ValueError("give both start and end, or neither for a day off")
        if (
            self.start is not None
            and self.end is not None
            and (not _in_order(self.start, self.end) or self.start.tzinfo)
        ):
            raise ValueError("start must be before end, as local wall-clock times")
        return self


class Availability(Input):
    weekly: Annotated[list[WeeklyHoursIn], Field(max_length=70)] = []
    overrides: Annotated[list[DateOverrideIn], Field(max_length=400)] = []
    min_notice_minutes: Annotated[int, Field(ge=0, le=43_200)] = 120
    booking_window_days: Annotated[int, Field(ge=1, le=365)] = 60
    session_lengths: Annotated[list[Annotated[int, Field(ge=15, le=480)]], Field(min_length=1, max_length=6)] = [30, 60]

    @model_validator(mode="after")
    def _distinct_lengths(self) -> Availability:
        if len(set(self.session_lengths)) != len(self.session_lengths):
            raise ValueError("session lengths must be distinct")
        return self

    @model_validator(mode="after")
    def _distinct_weekly_starts(self) -> Availability:
        """(weekday, start) identifies a weekly rule. Two with different ends are refused rather than
        merged: which end was meant is a guess, and what the mentor reads back must be what they sent."""
        starts = {(rule.weekday, rule.start) for rule in self.weekly}
        if len(starts) != len(self.weekly):
            raise PydanticCustomError("duplicate_weekly_rule", "two weekly rules share a weekday and start")
        return self


class MentorStats(BaseModel):
    rating_average: float
    rating_count: int


class MentorSummary(BaseModel):
    """A mentor as discovery lists them."""

    id: uuid.UUID
    name: str
    headline: str
    skills: list[str]
    languages: list[str]
    years_experience: int
    timezone: str
    hourly_rate: Money
    stats: MentorStats
    created_at: datetime


class MentorPublic(MentorSummary):
    bio: str
    session_lengths: list[int]


class MentorPrivate(MentorPublic):
    """The mentor's own view: adds the payout UPI id and whether admins have the profile listed."""

    upi_id: str | None
    is_active: bool


class MentorsPage(BaseModel):
    data: list[MentorSummary]
    next_cursor: str | None


Sort = Literal["rating", "price", "newest"]


class MentorQuery(Input):
    skill: Skill | None = None
    language: Language | None = None
    min_price: AmountMinor | None = None
    max_price: AmountMinor | None = None
    min_rating: Annotated[float, Field(ge=0, le=5)] | None = None
    sort: Sort = "rating"
    # After the price fields and sort, which its validator reads.
    currency: Annotated[Currency | None, Field(validate_default=True)] = None
    limit: Annotated[int, Field(ge=1, le=50)] = 20
    cursor: CursorParam | None = None

    @field_validator("currency")
    @classmethod
    def _currency_for_prices(cls, currency: str | None, info: ValidationInfo) -> str | None:
        """Amounts in minor units compare only within one currency (1000 is ¥1000 or $10)."""
        priced = info.data.get("min_price") is not None or info.data.get("max_price") is not None
        if currency is None and (priced or info.data.get("sort") == "price"):
            raise PydanticCustomError("currency_required", "min_price, max_price and sort=price need a currency")
        return currency

    @model_validator(mode="after")
    def _price_range(self) -> MentorQuery:
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise ValueError("min_price is above max_price")
        return self


class SlotQuery(Input):
    start: Annotated[BoundedDate, Field(alias="from")]
    end: Annotated[BoundedDate, Field(alias="to")]
    tz: Timezone = "UTC"
    length: Annotated[int, Field(ge=15, le=480)] | None = None

    @model_validator(mode="after")
    def _range(self) -> SlotQuery:
        if self.end < self.start or (self.end - self.start).days > 62:
            raise ValueError("'to' must be on or after 'from' and at most 62 days later")
        return self


class Slot(BaseModel):
    start: datetime
    end: datetime


class SlotsPublic(BaseModel):
    mentor_id: uuid.UUID
    timezone: str
    length_minutes: int
    slots: list[Slot]
