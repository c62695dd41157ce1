"""Mentor use cases: profiles, prices and payout ids, availability and slots, and discovery.

Discovery (`mentors:list`, 5 min) is the hottest read. Every mutation that changes what it shows
bumps the list's generation after its transaction commits and before it answers, so the next read
anywhere never returns the list as it was before the write (see shared/cache/generations.py).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

from shared.bookings.repository import fetch_busy_intervals
from shared.cache.cache import Cache
from shared.db.database import Database
from shared.errors import NotFound, ValidationFailed
from shared.http.cursor import InvalidCursor, Keyset
from shared.mentors import repository
from shared.mentors.availability import DateOverride, Schedule, WeeklyHours, generate_slots
from shared.mentors.discovery_page import page_json
from shared.mentors.models import (
    AmountMinor,
    Availability,
    DateOverrideIn,
    MentorCreate,
    MentorPrivate,
    MentorPublic,
    MentorQuery,
    MentorUpdate,
    Money,
    Slot,
    SlotQuery,
    SlotsPublic,
    WeeklyHoursIn,
)
from shared.models import BoundedDatetime

LIST_NAMESPACE = "mentors:list"
LIST_TTL_S = 300


class MentorNotFound(NotFound):
    code = "mentor_not_found"
    title = "No such mentor"


class UnsupportedSessionLength(ValidationFailed):
    code = "unsupported_session_length"
    title = "The mentor does not offer sessions of this length"


def _found(mentor: MentorPrivate | None) -> MentorPrivate:
    if mentor is None:
        raise MentorNotFound()
    return mentor


async def invalidate_mentor_list(cache: Cache) -> None:
    """Make the next discovery read load afresh; call after a committed write that changes the list
    (createReview calls it after its transaction, which updated the rating with `repository.set_rating`)."""
    await cache.bump(LIST_NAMESPACE)


async def create_mentor(database: Database, cache: Cache, user_id: uuid.UUID, data: MentorCreate) -> MentorPrivate:
    """createMentor: the caller's (a mentor-role user's) profile, listed at once; 409 if it exists."""
    async with database.transaction() as conn:
        mentor = await repository.insert_mentor(conn, user_id, data)
    await invalidate_mentor_list(cache)
    return mentor


async def get_own_mentor(database: Database, user_id: uuid.UUID) -> MentorPrivate:
    """The caller's own profile, including the payout UPI id and whether it is listed."""
    async with database.connection() as conn:
        return _found(await repository.fetch_mentor(conn, user_id, listed_only=False))


async def get_mentor(database: Database, mentor_id: uuid.UUID) -> MentorPublic:
    """A listed mentor's public profile with stats (never the UPI id); 404 when unlisted."""
    async with database.connection() as conn:
        mentor = _found(await repository.fetch_mentor(conn, mentor_id, listed_only=True))
    return MentorPublic.model_validate(mentor.model_dump(exclude={"upi_id", "is_active"}))


async def update_mentor(database: Database, cache: Cache, user_id: uuid.UUID, data: MentorUpdate) -> MentorPrivate:
    """PATCH of the caller's profile: only the fields sent change."""
    async with database.transaction() as conn:
        mentor = _found(await repository.update_profile(conn, user_id, data))
    await invalidate_mentor_list(cache)
    return mentor


async def update_mentor_hourly_rate(database: Database, cache: Cache, user_id: uuid.UUID, rate: Money) -> MentorPrivate:
    """updateMentorHourlyRate. Existing bookings keep the price they snapshotted."""
    async with database.transaction() as conn:
        mentor = _found(await repository.update_hourly_rate(conn, user_id, rate))
    await invalidate_mentor_list(cache)
    return mentor


async def update_mentor_upi_id(database: Database, cache: Cache, user_id: uuid.UUID, upi_id: str) -> MentorPrivate:
    """updateMentorUpiId: the payout VPA (validated at the boundary)."""
    async with database.transaction() as conn:
        mentor = _found(await repository.update_upi_id(conn, user_id, upi_id))
    await invalidate_mentor_list(cache)
    return mentor


async def set_mentor_active(database: Database, cache: Cache, mentor_id: uuid.UUID, active: bool) -> MentorPrivate:
    """Admin activation/deactivation: an inactive profile disappears from discovery, profile and slots."""
    async with database.transaction() as conn:
        mentor = _found(await repository.update_active(conn, mentor_id, active))
    await invalidate_mentor_list(cache)
    return mentor


async def update_mentor_rating(
    database: Database, cache: Cache, mentor_id: uuid.UUID, *, average: Decimal, count: int
) -> MentorPrivate:
    """updateMentorRating: store the aggregate recomputed from reviews, then refresh discovery.

    Internal (no route): the reviews feature computes the aggregate in the transaction that writes
    the review, calls `repository.set_rating` there and `invalidate_mentor_list` after commit; this
    function is the stand-alone form of the same step.
    """
    async with database.transaction() as conn:
        mentor = _found(await repository.set_rating(conn, mentor_id, average, count))
    await invalidate_mentor_list(cache)
    return mentor


# --- availability ---------------------------------------------------------------------------------


async def set_availability(database: Database, user_id: uuid.UUID, data: Availability) -> Availability:
    """Replace the caller's weekly hours, overrides, notice, window and session lengths at once."""
    async with database.transaction() as conn:
        replaced = await repository.replace_availability(
            conn,
            user_id,
            min_notice_minutes=data.min_notice_minutes,
            booking_window_days=data.booking_window_days,
            session_lengths=data.session_lengths,
            weekly=[(w.weekday, w.start, w.end) for w in data.weekly],
            overrides=[(o.date, o.start, o.end) for o in data.overrides],
        )
    if not replaced:
        raise MentorNotFound()
    return data


async def get_availability(database: Database, user_id: uuid.UUID) -> Availability:
    """The caller's schedule, with every override (past ones included)."""
    async with database.connection() as conn:
        rows = await repository.fetch_availability(conn, user_id, date.min, date.max, include_unlisted=True)
    if rows is None:
        raise MentorNotFound()
    return Availability(
        weekly=[WeeklyHoursIn(weekday=d, start=s, end=e) for d, s, e in rows.weekly],
        overrides=[DateOverrideIn(date=d, start=s, end=e) for d, s, e in rows.overrides],
        min_notice_minutes=rows.min_notice_minutes,
        booking_window_days=rows.booking_window_days,
        session_lengths=rows.session_lengths,
    )


def schedule_of(rows: repository.AvailabilityRows) -> Schedule:
    """The slot generator's view of a mentor's stored availability."""
    return Schedule(
        ZoneInfo(rows.timezone),
        weekly=[WeeklyHours(d, s, e) for d, s, e in rows.weekly],
        overrides=[DateOverride(d, s, e) for d, s, e in rows.overrides],
        min_notice=timedelta(minutes=rows.min_notice_minutes),
        booking_window=timedelta(days=rows.booking_window_days),
    )


def check_session_length(rows: repository.AvailabilityRows, length: int) -> None:
    if length not in rows.session_lengths:
        raise UnsupportedSessionLength(extra={"offered": sorted(rows.session_lengths)})


async def list_slots(database: Database, mentor_id: uuid.UUID, query: SlotQuery, *, now: datetime) -> SlotsPublic:
    """Bookable slots of a listed mentor from the asker's `from` day to their `to` day inclusive,
    shown in the asker's zone, without those that overlap a booking holding its slot."""
    asker = ZoneInfo(query.tz)
    start = datetime.combine(query.start, time(0), tzinfo=asker).astimezone(UTC)
    end = datetime.combine(query.end + timedelta(days=1), time(0), tzinfo=asker).astimezone(UTC)
    async with database.connection() as conn:
        rows = await repository.fetch_availability(
            conn, mentor_id, query.start - timedelta(days=2), query.end + timedelta(days=2), include_unlisted=False
        )
        if rows is None:
            raise MentorNotFound()
        length = query.length if query.length is not None else min(rows.session_lengths)
        check_session_length(rows, length)
        # A slot starting just before `end` runs up to `length` past it.
        busy = await fetch_busy_intervals(conn, mentor_id, start, end + timedelta(minutes=length))
    slots = generate_slots(
        schedule_of(rows), length=timedelta(minutes=length), start=start, end=end, now=now, busy=busy
    )
    return SlotsPublic(
        mentor_id=mentor_id,
        timezone=query.tz,
        length_minutes=length,
        slots=[Slot(start=s.astimezone(asker), end=e.astimezone(asker)) for s, e in slots],
    )


# --- discovery ------------------------------------------------------------------------------------


# Discovery pages: the sort, the sort key and the id of a page's last mentor, and a digest of the
# filters the page was listed with. Naming the sort and the filters makes a cursor from another sort
# or filter set invalid (its key need not lie in, nor mean anything to, this list); each key is
# checked against its column's range.
def _numeric_3_2(value: Decimal) -> Decimal:
    """pydantic counts no digits in a zero, so 0E-99999 passes max_digits; asyncpg cannot encode it."""
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int) or not -2 <= exponent <= 0:
        raise PydanticCustomError("decimal_scale", "not a numeric(3,2)")
    return value


Rating = Annotated[Decimal, Field(ge=0, le=5, max_digits=3, decimal_places=2), AfterValidator(_numeric_3_2)]
FiltersDigest = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{12}$")]
DISCOVERY_CURSORS: dict[str, Keyset[tuple[str, Any, uuid.UUID, str]]] = {
    "rating": Keyset(tuple[Literal["rating"], Rating, uuid.UUID, FiltersDigest]),
    "price": Keyset(tuple[Literal["price"], AmountMinor, uuid.UUID, FiltersDigest]),
    "newest": Keyset(tuple[Literal["newest"], BoundedDatetime, uuid.UUID, FiltersDigest]),
}


def _filters_digest(query: MentorQuery) -> str:
    """The filters of `query` (everything but the sort, which the cursor names, the page size and the cursor)."""
    filters = query.model_dump(exclude={"sort", "limit", "cursor"})
    canonical = json.dumps(filters, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode(), digest_size=6).hexdigest()


def _decode_cursor(query: MentorQuery) -> tuple[Any, uuid.UUID] | None:
    if query.cursor is None:
        return None
    _, key, mentor_id, digest = DISCOVERY_CURSORS[query.sort].decode(query.cursor)
    if digest != _filters_digest(query):
        raise InvalidCursor()
    return key, mentor_id


def _variant(query: MentorQuery) -> str:
    canonical = json.dumps(query.model_dump(exclude_none=True), sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode(), digest_size=12).hexdigest()


async def list_mentors(database: Database, cache: Cache, query: MentorQuery) -> bytes:
    """GET /api/mentors: listed mentors with their stats, filtered and sorted, one keyset page.

    Returns the JSON bytes of a `MentorsPage`, from `mentors:list` (5 min) when cached. Pages follow
    a total order (the sort key, then the id), so paging never skips or repeats a mentor that did not
    change.
    """
    after = _decode_cursor(query)

    async def load() -> bytes:
        async with database.connection() as conn:
            rows = await repository.list_mentors(conn, query, after)
        page, more = rows[: query.limit], len(rows) > query.limit
        next_cursor = None
        if more:
            last = page[-1]
            key = last[repository.SORT_KEY_COLUMN[query.sort]]
            next_cursor = DISCOVERY_CURSORS[query.sort].encode((query.sort, key, last["id"], _filters_digest(query)))
        return page_json(page, next_cursor)

    return await cache.get_or_load_versioned(LIST_NAMESPACE, _variant(query), LIST_TTL_S, load, public=True)
