"""Stats use cases: a student's and a mentor's dashboard figures, as of `now`.

Each is one SQL statement over the participant's bookings, cached as the variant "stats" of the
participant's booking namespace (shared/bookings/caching.py, BOOKINGS_TTL_S). Every booking change
and every review calls `invalidate_participants` after it commits, so the figures are never older
than an acknowledged write. What changes with the clock alone, `upcoming` (a booking whose start
passes is no longer upcoming), is covered by the entry's lifetime instead: it expires when the
earliest booking it counts starts, if that is sooner than the TTL. `as_of` says when the figures
were computed.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from shared.bookings.caching import BOOKINGS_TTL_S, mentor_namespace, student_namespace
from shared.cache.cache import Cache, Expiring
from shared.db.database import Database
from shared.mentors.service import MentorNotFound
from shared.stats import repository
from shared.stats.repository import Figures

STATS_VARIANT = "stats"


def _cacheable(figures: Figures[repository.S], now: datetime) -> bytes | Expiring:
    """The figures as JSON, to be cached no longer than until the next counted booking starts."""
    body = figures.stats.model_dump_json().encode()
    if figures.next_start is None:
        return body
    return Expiring(body, (figures.next_start - now).total_seconds())


async def student_stats(database: Database, cache: Cache, student_id: uuid.UUID, *, now: datetime) -> bytes:
    """GET /api/students/me/stats as JSON bytes: sessions completed, upcoming, hours and spend per currency."""

    async def load() -> bytes | Expiring:
        async with database.connection() as conn:
            figures = await repository.student_stats(conn, student_id, now)
        return _cacheable(figures, now)

    return await cache.get_or_load_versioned(student_namespace(student_id), STATS_VARIANT, BOOKINGS_TTL_S, load)


async def mentor_stats(database: Database, cache: Cache, mentor_id: uuid.UUID, *, now: datetime) -> bytes:
    """GET /api/mentors/me/stats as JSON bytes: sessions, hours, earnings per currency and the rating;
    404 `mentor_not_found` before the mentor has created a profile."""

    async def load() -> bytes | Expiring:
        async with database.connection() as conn:
            figures = await repository.mentor_stats(conn, mentor_id, now)
        if figures is None:
            raise MentorNotFound()
        return _cacheable(figures, now)

    return await cache.get_or_load_versioned(mentor_namespace(mentor_id), STATS_VARIANT, BOOKINGS_TTL_S, load)
