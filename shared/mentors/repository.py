"""SQL for mentor profiles, availability and discovery."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from typing import Any

import asyncpg

from shared.db.database import Connection
from shared.db.errors import translate_errors
from shared.errors import AlreadyExists, ReferenceNotFound
from shared.mentors.models import (
    MentorCreate,
    MentorPrivate,
    MentorQuery,
    MentorStats,
    MentorUpdate,
    Money,
)

# Who discovery lists, and whose profile, slots and reviews are public and who can be booked: an
# active profile of an active account that still has the mentor role (an admin may demote one).
LISTED = "m.is_active AND u.status = 'active' AND u.role = 'mentor'"

_BY_CONSTRAINT = {
    "mentors_pkey": lambda: AlreadyExists("this user already has a mentor profile"),
    "mentors_id_fkey": lambda: ReferenceNotFound("the user does not exist"),
}

INSERT_MENTOR = """
INSERT INTO mentors AS m (id, headline, bio, skills, languages, years_experience, timezone,
                          hourly_rate_minor, currency, upi_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
RETURNING m.id, (SELECT name FROM users u WHERE u.id = m.id) AS name, m.headline, m.bio, m.skills, m.languages,
          m.years_experience, m.timezone, m.hourly_rate_minor, m.currency, m.upi_id, m.is_active, m.rating,
          m.rating_count, m.session_lengths, m.created_at
"""


def _private(row: asyncpg.Record) -> MentorPrivate:
    return MentorPrivate(
        id=row["id"],
        name=row["name"],
        headline=row["headline"],
        bio=row["bio"],
        skills=row["skills"],
        languages=row["languages"],
        years_experience=row["years_experience"],
        timezone=row["timezone"],
        hourly_rate=Money(amount_minor=row["hourly_rate_minor"], currency=row["currency"]),
        stats=MentorStats(rating_average=float(row["rating"]), rating_count=row["rating_count"]),
        session_lengths=row["session_lengths"],
        created_at=row["created_at"],
        upi_id=row["upi_id"],
        is_active=row["is_active"],
    )


async def insert_mentor(conn: Connection, user_id: uuid.UUID, data: MentorCreate) -> MentorPrivate:
    with translate_errors(_BY_CONSTRAINT):
        row = await conn.fetchrow(
            INSERT_MENTOR,
            user_id,
            data.headline,
            data.bio,
            data.skills,
            data.languages,
            data.years_experience,
            data.timezone,
            data.hourly_rate.amount_minor,
            data.hourly_rate.currency,
            data.upi_id,
        )
    assert row is not None
    return _private(row)


SELECT_MENTOR = """
SELECT m.id, u.name, m.headline, m.bio, m.skills, m.languages, m.years_experience, m.timezone,
       m.hourly_rate_minor, m.currency, m.upi_id, m.is_active, m.rating, m.rating_count,
       m.session_lengths, m.created_at
FROM mentors m JOIN users u ON u.id = m.id
WHERE m.id = $1
"""
SELECT_LISTED_MENTOR = SELECT_MENTOR + f"  AND {LISTED}\n"


async def fetch_mentor(conn: Connection, mentor_id: uuid.UUID, *, listed_only: bool) -> MentorPrivate | None:
    """The profile, or None; with `listed_only`, only a listed one (see LISTED)."""
    row = await conn.fetchrow(SELECT_LISTED_MENTOR if listed_only else SELECT_MENTOR, mentor_id)
    return None if row is None else _private(row)


async def has_profile(conn: Connection, user_id: uuid.UUID) -> bool:
    """Whether the account has a mentor profile, listed or not (its account changes may change discovery)."""
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM mentors WHERE id = $1)", user_id))


UPDATE_PROFILE = """
UPDATE mentors AS m SET
    headline = coalesce($2, headline), bio = coalesce($3, bio), skills = coalesce($4, skills),
    languages = coalesce($5, languages), years_experience = coalesce($6, years_experience),
    timezone = coalesce($7, timezone), updated_at = now()
WHERE id = $1
RETURNING m.id, (SELECT name FROM users u WHERE u.id = m.id) AS name, m.headline, m.bio, m.skills, m.languages,
          m.years_experience, m.timezone, m.hourly_rate_minor, m.currency, m.upi_id, m.is_active, m.rating,
          m.rating_count, m.session_lengths, m.created_at
"""


async def update_profile(conn: Connection, mentor_id: uuid.UUID, data: MentorUpdate) -> MentorPrivate | None:
    with translate_errors():
        row = await conn.fetchrow(
            UPDATE_PROFILE,
            mentor_id,
            data.headline,
            data.bio,
            data.skills,
            data.languages,
            data.years_experience,
            data.timezone,
        )
    return None if row is None else _private(row)


UPDATE_HOURLY_RATE = """
UPDATE mentors AS m SET hourly_rate_minor = $2, currency = $3, updated_at = now() WHERE id = $1
RETURNING m.id, (SELECT name FROM users u WHERE u.id = m.id) AS name, m.headline, m.bio, m.skills, m.languages,
          m.years_experience, m.timezone, m.hourly_rate_minor, m.currency, m.upi_id, m.is_active, m.rating,
          m.rating_count, m.session_lengths, m.created_at
"""
UPDATE_UPI_ID = """
UPDATE mentors AS m SET upi_id = $2, updated_at = now() WHERE id = $1
RETURNING m.id, (SELECT name FROM users u WHERE u.id = m.id) AS name, m.headline, m.bio, m.skills, m.languages,
          m.years_experience, m.timezone, m.hourly_rate_minor, m.currency, m.upi_id, m.is_active, m.rating,
          m.rating_count, m.session_lengths, m.created_at
"""
UPDATE_ACTIVE = """
UPDATE mentors AS m SET is_active = $2, updated_at = now() WHERE id = $1
RETURNING m.id, (SELECT name FROM users u WHERE u.id = m.id) AS name, m.headline, m.bio, m.skills, m.languages,
          m.years_experience, m.timezone, m.hourly_rate_minor, m.currency, m.upi_id, m.is_active, m.rating,
          m.rating_count, m.session_lengths, m.created_at
"""
UPDATE_RATING = """
UPDATE mentors AS m SET rating = round($2::numeric, 2), rating_count = $3, updated_at = now() WHERE id = $1
RETURNING m.id, (SELECT name FROM users u WHERE u.id = m.id) AS name, m.headline, m.bio, m.skills, m.languages,
          m.years_experience, m.timezone, m.hourly_rate_minor, m.currency, m.upi_id, m.is_active, m.rating,
          m.rating_count, m.session_lengths, m.created_at
"""


async def update_hourly_rate(conn: Connection, mentor_id: uuid.UUID, rate: Money) -> MentorPrivate | None:
    with translate_errors():
        row = await conn.fetchrow(UPDATE_HOURLY_RATE, mentor_id, rate.amount_minor, rate.currency)
    return None if row is None else _private(row)


async def update_upi_id(conn: Connection, mentor_id: uuid.UUID, upi_id: str) -> MentorPrivate | None:
    row = await conn.fetchrow(UPDATE_UPI_ID, mentor_id, upi_id)
    return None if row is None else _private(row)


async def update_active(conn: Connection, mentor_id: uuid.UUID, active: bool) -> MentorPrivate | None:
    row = await conn.fetchrow(UPDATE_ACTIVE, mentor_id, active)
    return None if row is None else _private(row)


async def set_rating(conn: Connection, mentor_id: uuid.UUID, average: Decimal, count: int) -> MentorPrivate | None:
    """Store the rating aggregate; the reviews feature calls this in the transaction that changes reviews."""
    with translate_errors():
        row = await conn.fetchrow(UPDATE_RATING, mentor_id, average, count)
    return None if row is None else _private(row)


# --- availability ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AvailabilityRows:
    timezone: str
    min_notice_minutes: int
    booking_window_days: int
    session_lengths: list[int]
    weekly: list[tuple[int, time, time]]
    overrides: list[tuple[date, time | None, time | None]]


SELECT_SETTINGS = f"""
SELECT timezone, min_notice_minutes, booking_window_days, session_lengths FROM mentors m
JOIN users u ON u.id = m.id WHERE m.id = $1 AND ($2 OR ({LISTED}))
"""  # noqa: S608 (a constant condition, no input)
# Hours that end at 24:00 are stored with PostgreSQL's time '24:00' and are END_OF_DAY (00:00) in
# Python, whose time stops at 23:59:59.999999 (asyncpg cannot read '24:00' as one).
SELECT_WEEKLY = """
SELECT weekday, start_time, CASE WHEN end_time = '24:00' THEN '00:00' ELSE end_time END AS end_time
FROM mentor_weekly_hours WHERE mentor_id = $1 ORDER BY 1, 2
"""
SELECT_OVERRIDES = """
SELECT on_date, start_time, CASE WHEN end_time = '24:00' THEN '00:00' ELSE end_time END AS end_time
FROM mentor_date_overrides
WHERE mentor_id = $1 AND on_date BETWEEN $2 AND $3 ORDER BY 1, 2 NULLS FIRST
"""


async def fetch_availability(
    conn: Connection, mentor_id: uuid.UUID, first: date, last: date, *, include_unlisted: bool
) -> AvailabilityRows | None:
    settings = await conn.fetchrow(SELECT_SETTINGS, mentor_id, include_unlisted)
    if settings is None:
        return None
    weekly = await conn.fetch(SELECT_WEEKLY, mentor_id)
    overrides = await conn.fetch(SELECT_OVERRIDES, mentor_id, first, last)
    return AvailabilityRows(
        settings["timezone"],
        settings["min_notice_minutes"],
        settings["booking_window_days"],
        settings["session_lengths"],
        [(r["weekday"], r["start_time"], r["end_time"]) for r in weekly],
        [(r["on_date"], r["start_time"], r["end_time"]) for r in overrides],
    )


UPDATE_SETTINGS = """
UPDATE mentors SET min_notice_minutes = $2, booking_window_days = $3, session_lengths = $4, updated_at = now()
WHERE id = $1
"""
DELETE_WEEKLY = "DELETE FROM mentor_weekly_hours WHERE mentor_id = $1"
DELETE_OVERRIDES = "DELETE FROM mentor_date_overrides WHERE mentor_id = $1"
INSERT_WEEKLY = """
INSERT INTO mentor_weekly_hours (mentor_id, weekday, start_time, end_time)
VALUES ($1, $2, $3, CASE WHEN $4::time = '00:00' THEN '24:00'::time ELSE $4::time END)
"""
INSERT_OVERRIDE = """
INSERT INTO mentor_date_overrides (mentor_id, on_date, start_time, end_time)
VALUES ($1, $2, $3, CASE WHEN $4::time = '00:00' THEN '24:00'::time ELSE $4::time END)
"""


async def replace_availability(
    conn: Connection,
    mentor_id: uuid.UUID,
    *,
    min_notice_minutes: int,
    booking_window_days: int,
    session_lengths: Sequence[int],
    weekly: Sequence[tuple[int, time, time]],
    overrides: Sequence[tuple[date, time | None, time | None]],
) -> bool:
    """Replace the whole schedule (run inside a transaction); False when there is no such mentor."""
    with translate_errors():
        status = await conn.execute(
            UPDATE_SETTINGS, mentor_id, min_notice_minutes, booking_window_days, session_lengths
        )
        if status == "UPDATE 0":
            return False
        await conn.execute(DELETE_WEEKLY, mentor_id)
        await conn.execute(DELETE_OVERRIDES, mentor_id)
        await conn.executemany(INSERT_WEEKLY, [(mentor_id, *w) for w in weekly])
        await conn.executemany(INSERT_OVERRIDE, [(mentor_id, *o) for o in overrides])
    return True


# --- discovery ------------------------------------------------------------------------------------

# Each sort: its ORDER BY (naming the indexed columns, so the planner walks the partial index
# instead of sorting) and the keyset condition that continues after a cursor.
SORTS: dict[str, tuple[str, str]] = {
    "rating": ("m.rating DESC, m.id DESC", "(m.rating, m.id) < (${}::numeric, ${}::uuid)"),
    "price": ("m.hourly_rate_minor, m.id", "(m.hourly_rate_minor, m.id) > (${}::bigint, ${}::uuid)"),
    "newest": ("m.created_at DESC, m.id DESC", "(m.created_at, m.id) < (${}::timestamptz, ${}::uuid)"),
}
SORT_KEY_COLUMN = {"rating": "rating", "price": "hourly_rate_minor", "newest": "created_at"}

_LIST_SELECT = f"""
SELECT m.id, u.name, m.headline, m.skills, m.languages, m.years_experience, m.timezone,
       m.hourly_rate_minor, m.currency, m.rating, m.rating_count, m.created_at
FROM mentors m JOIN users u ON u.id = m.id
WHERE {LISTED}
"""  # noqa: S608 (a constant condition, no input)


def list_query(query: MentorQuery, after: tuple[Any, uuid.UUID] | None) -> tuple[str, list[Any]]:
    """The discovery statement and its parameters (every value is a bind parameter)."""
    conditions: list[str] = []
    params: list[Any] = []

    def bind(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    if query.skill is not None:
        conditions.append(f"m.skills @> ARRAY[{bind(query.skill)}::text]")
    if query.language is not None:
        conditions.append(f"m.languages @> ARRAY[{bind(query.language)}::text]")
    if query.currency is not None:
        conditions.append(f"m.currency = {bind(query.currency)}")
    if query.min_price is not None:
        conditions.append(f"m.hourly_rate_minor >= {bind(query.min_price)}")
    if query.max_price is not None:
        conditions.append(f"m.hourly_rate_minor <= {bind(query.max_price)}")
    if query.min_rating is not None:
        conditions.append(f"m.rating >= {bind(Decimal(str(query.min_rating)))}")
    order_by, keyset = SORTS[query.sort]
    if after is not None:
        conditions.append(keyset.format(len(params) + 1, len(params) + 2))
        params.extend(after)
    where = "".join(f"\n  AND {c}" for c in conditions)
    sql = f"{_LIST_SELECT}{where}\nORDER BY {order_by}\nLIMIT {bind(query.limit + 1)}"
    return sql, params


async def list_mentors(
    conn: Connection, query: MentorQuery, after: tuple[Any, uuid.UUID] | None
) -> list[asyncpg.Record]:
    sql, params = list_query(query, after)
    return await conn.fetch(sql, *params)
