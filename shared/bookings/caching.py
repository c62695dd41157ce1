"""The booking caches the original names: `bookings:student:{id}` and `bookings:mentor:{id}`, 2 min.

Each participant's namespace holds every cached view of their bookings (list pages, stats); one
`bump` after a committed booking change makes all of them unreachable at once.
"""

from __future__ import annotations

import uuid

from shared.cache.cache import Cache

BOOKINGS_TTL_S = 120


def student_namespace(student_id: uuid.UUID) -> str:
    return f"bookings:student:{student_id}"


def mentor_namespace(mentor_id: uuid.UUID) -> str:
    return f"bookings:mentor:{mentor_id}"


async def invalidate_participants(cache: Cache, *, student_id: uuid.UUID, mentor_id: uuid.UUID) -> None:
    """Call after the transaction that changed a booking of these two has committed."""
    await cache.bump(student_namespace(student_id), mentor_namespace(mentor_id))
