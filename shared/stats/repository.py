"""The participants' stats, each one statement over the participant's bookings: one pass over the
participant's range of bookings_student_id_scheduled_at_idx / bookings_mentor_id_scheduled_at_idx."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from shared.db.database import Connection
from shared.stats.models import CurrencyTotal, MentorStats, StudentStats

S = TypeVar("S", StudentStats, MentorStats)


@dataclass(frozen=True, slots=True)
class Figures(Generic[S]):
    stats: S
    # The start of the earliest booking counted as upcoming: from then on `upcoming` is one less,
    # with no write to tell the cache. None when nothing is upcoming.
    next_start: datetime | None


# A paid cancellation that kept money: a cancelled booking that had been paid (confirmed_at set)
# and of whose price the policy kept part (a late cancellation). The kept part, price -
# refund_due_minor, was spent by the student and, less the commission on it, earned by the mentor.

# $1 is the participant, $2 is `now`. The inner query groups by currency; the outer one folds the
# groups into one row (counts and hours over all currencies, money as a list per currency).
# `upcoming` is the only figure that depends on `now`: next_start, the earliest start it counts, is
# when it next changes by the clock alone.

# Spend: what the student paid and keeps paid: confirmed, completed and no-show bookings and paid
# cancellations that kept money, each at its snapshotted price less the refund its policy granted.
STUDENT_STATS = """
WITH b AS (
    SELECT currency, status, scheduled_at, ends_at, price_minor - coalesce(refund_due_minor, 0) AS kept_minor,
           (status IN ('confirmed', 'completed', 'no_show')
            OR (status = 'cancelled' AND confirmed_at IS NOT NULL AND coalesce(refund_due_minor, 0) < price_minor))
               AS spent
    FROM bookings
    WHERE student_id = $1
), g AS (
    SELECT currency,
           count(*) FILTER (WHERE status = 'completed') AS sessions_completed,
           count(*) FILTER (WHERE status IN ('pending_payment', 'confirmed') AND scheduled_at > $2) AS upcoming,
           min(scheduled_at) FILTER (WHERE status IN ('pending_payment', 'confirmed') AND scheduled_at > $2)
               AS next_start,
           sum(ends_at - scheduled_at) FILTER (WHERE status = 'completed') AS time_completed,
           count(*) FILTER (WHERE spent) AS counted,
           sum(kept_minor) FILTER (WHERE spent) AS amount_minor
    FROM b
    GROUP BY currency
)
SELECT coalesce(sum(g.sessions_completed), 0)::bigint AS sessions_completed,
       coalesce(sum(g.upcoming), 0)::bigint AS upcoming,
       min(g.next_start) AS next_start,
       round(coalesce(extract(epoch FROM sum(g.time_completed)), 0) / 3600, 2) AS hours_completed,
       coalesce(jsonb_agg(jsonb_build_object('currency', g.currency, 'amount_minor', g.amount_minor)
                          ORDER BY g.currency) FILTER (WHERE g.counted > 0), '[]') AS money
FROM g
"""

# Earnings: completed bookings and those the student missed, each at its snapshotted price, and paid
# cancellations that kept money, at the kept part (price - refund_due_minor); each less the
# commission on that amount, amount * bps / 10000 rounded half up to a minor unit (integer
# arithmetic, no floats).
MENTOR_STATS = """
WITH b AS (
    SELECT currency, status, scheduled_at, ends_at, commission_bps,
           CASE WHEN status = 'cancelled' THEN price_minor - coalesce(refund_due_minor, 0) ELSE price_minor END
               AS kept_minor,
           (status = 'completed' OR (status = 'no_show' AND no_show_party = 'student')
            OR (status = 'cancelled' AND confirmed_at IS NOT NULL AND coalesce(refund_due_minor, 0) < price_minor))
               AS earns
    FROM bookings
    WHERE mentor_id = $1
), g AS (
    SELECT currency,
           count(*) FILTER (WHERE status = 'completed') AS sessions_completed,
           count(*) FILTER (WHERE status IN ('pending_payment', 'confirmed') AND scheduled_at > $2) AS upcoming,
           min(scheduled_at) FILTER (WHERE status IN ('pending_payment', 'confirmed') AND scheduled_at > $2)
               AS next_start,
           sum(ends_at - scheduled_at) FILTER (WHERE status = 'completed') AS time_completed,
           count(*) FILTER (WHERE earns) AS counted,
           sum(kept_minor - (kept_minor * commission_bps + 5000) / 10000) FILTER (WHERE earns) AS amount_minor
    FROM b
    GROUP BY currency
)
SELECT m.rating, m.rating_count,
       coalesce(sum(g.sessions_completed), 0)::bigint AS sessions_completed,
       coalesce(sum(g.upcoming), 0)::bigint AS upcoming,
       min(g.next_start) AS next_start,
       round(coalesce(extract(epoch FROM sum(g.time_completed)), 0) / 3600, 2) AS hours_completed,
       coalesce(jsonb_agg(jsonb_build_object('currency', g.currency, 'amount_minor', g.amount_minor)
                          ORDER BY g.currency) FILTER (WHERE g.counted > 0), '[]') AS money
FROM mentors m LEFT JOIN g ON true
WHERE m.id = $1
GROUP BY m.id
"""


async def student_stats(conn: Connection, student_id: uuid.UUID, now: datetime) -> Figures[StudentStats]:
    """Spend per currency: confirmed, completed and no-show bookings at price - refund_due_minor, plus
    paid cancellations that kept money (confirmed_at set, refund below the price) at the kept part."""
    row = await conn.fetchrow(STUDENT_STATS, student_id, now)
    assert row is not None  # an aggregate without GROUP BY always returns its row
    stats = StudentStats(
        as_of=now,
        sessions_completed=row["sessions_completed"],
        upcoming=row["upcoming"],
        hours_completed=float(row["hours_completed"]),
        spend=[CurrencyTotal.model_validate(m) for m in row["money"]],
    )
    return Figures(stats, row["next_start"])


async def mentor_stats(conn: Connection, mentor_id: uuid.UUID, now: datetime) -> Figures[MentorStats] | None:
    """Earnings per currency: completed and student no-show bookings at price - commission(price),
    plus paid cancellations that kept money at kept - commission(kept), kept = price -
    refund_due_minor, commission(x) = x * commission_bps / 10000 rounded half up. None when the
    user has no mentor profile."""
    row = await conn.fetchrow(MENTOR_STATS, mentor_id, now)
    if row is None:
        return None
    stats = MentorStats(
        as_of=now,
        sessions_completed=row["sessions_completed"],
        upcoming=row["upcoming"],
        hours_completed=float(row["hours_completed"]),
        earnings=[CurrencyTotal.model_validate(m) for m in row["money"]],
        rating=float(row["rating"]),
        rating_count=row["rating_count"],
    )
    return Figures(stats, row["next_start"])
