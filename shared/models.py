"""Field types that every feature's API models share: bounded instants and dates, and free text
the database can store.

An aware datetime from a client may lie anywhere Python can represent, but arithmetic near year 1
or 9999 overflows (adding a session length, converting to UTC) and asyncpg cannot encode some of
those values, so instants and dates outside [2000, 2200) are refused at the boundary as 422. Text
may not contain NUL, which PostgreSQL's text and jsonb cannot hold.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, StringConstraints
from pydantic_core import PydanticCustomError

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def in_range_utc(value: datetime) -> datetime:
    """`value` (aware) in UTC, refused unless EARLIEST <= value < LATEST."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError("datetime_out_of_range", "the instant is outside years 2000-2199") from None
    if not EARLIEST <= utc < LATEST:
        raise PydanticCustomError("datetime_out_of_range", "the instant is outside years 2000-2199")
    return utc


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _calendar_date(value: object) -> object:
    """Only YYYY-MM-DD (or a date object): pydantic would also take an instant at midnight or a Unix
    time and silently drop its time and offset."""
    if isinstance(value, datetime) or not (
        isinstance(value, date) or (isinstance(value, str) and _ISO_DATE.fullmatch(value))
    ):
        raise PydanticCustomError("date_format", "a calendar date, YYYY-MM-DD")
    return value


def _date_in_range(value: date) -> date:
    if not EARLIEST.date() <= value < LATEST.date():
        raise PydanticCustomError("date_out_of_range", "the date is outside years 2000-2199")
    return value


# An aware instant in years 2000-2199, normalised to UTC (so equal instants compare and hash alike).
BoundedDatetime = Annotated[AwareDatetime, AfterValidator(in_range_utc)]
# A calendar date, written YYYY-MM-DD, in years 2000-2199.
BoundedDate = Annotated[date, BeforeValidator(_calendar_date), AfterValidator(_date_in_range)]
# Free text; add lengths with Annotated[Text, StringConstraints(max_length=...)]. It is a str constraint,
# not a validator function, so it merges with the field's own (strip first, then lengths); a field
# must not set its own `pattern`, which would replace this one.
Text = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]
