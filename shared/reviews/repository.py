"""SQL for reviews: the review row, the mentor's aggregate, pages. The booking a review is about is
read with shared/bookings/repository.py."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from shared.bookings.models import Booking
from shared.db.database import Connection
from shared.db.errors import translate_errors
from shared.errors import Conflict
from shared.reviews.models import Review, ReviewPublic


class AlreadyReviewed(Conflict):
    code = "already_reviewed"
    title = "This booking already has a review"


_BY_CONSTRAINT = {"reviews_booking_id_key": lambda: AlreadyReviewed()}


INSERT_REVIEW = """
INSERT INTO reviews (booking_id, mentor_id, student_id, rating, body) VALUES ($1, $2, $3, $4, $5)
RETURNING id, booking_id, mentor_id, rating, body, created_at
"""


async def insert_review(conn: Connection, booking: Booking, rating: int, text: str) -> Review:
    """The new review of `booking`; AlreadyReviewed when it has one, also one committed meanwhile."""
    with translate_errors(_BY_CONSTRAINT):
        row = await conn.fetchrow(INSERT_REVIEW, booking.id, booking.mentor_id, booking.student_id, rating, text)
    assert row is not None
    return Review(
        id=row["id"],
        booking_id=row["booking_id"],
        mentor_id=row["mentor_id"],
        rating=row["rating"],
        text=row["body"],
        created_at=row["created_at"],
    )


# NO KEY UPDATE, not UPDATE: the review insert's foreign-key check already holds KEY SHARE on this
# row, and so does a concurrent review of the same mentor; FOR UPDATE would conflict with the other
# transaction's KEY SHARE and the two would deadlock. NO KEY UPDATE still serialises the writers.
LOCK_MENTOR = "SELECT 1 FROM mentors WHERE id = $1 FOR NO KEY UPDATE"
AGGREGATE = "SELECT coalesce(avg(rating), 0) AS average, count(*) AS count FROM reviews WHERE mentor_id = $1"


async def lock_mentor_and_aggregate(conn: Connection, mentor_id: uuid.UUID) -> tuple[Decimal, int]:
    """Serialise the mentor's rating writers, then read the average and count of every review.

    Under READ COMMITTED the aggregate runs after the lock is granted, so it sees every review
    committed by the writers that held the lock before (and this transaction's own).
    """
    with translate_errors():
        await conn.execute(LOCK_MENTOR, mentor_id)
        row = await conn.fetchrow(AGGREGATE, mentor_id)
    assert row is not None
    return Decimal(row["average"]), int(row["count"])


# Newest first, keyset on (created_at, id): reviews_mentor_id_idx serves both pages in order.
_PAGE = """
SELECT r.id, r.rating, r.body, r.created_at,
       CASE WHEN u.status = 'deleted' THEN NULL ELSE split_part(btrim(u.name), ' ', 1) END AS first_name
FROM reviews r JOIN users u ON u.id = r.student_id
WHERE r.mentor_id = $1{after}
ORDER BY r.created_at DESC, r.id DESC
LIMIT $2
"""
FIRST_PAGE = _PAGE.format(after="")
NEXT_PAGE = _PAGE.format(after=" AND (r.created_at, r.id) < ($3, $4)")


async def list_reviews(
    conn: Connection, mentor_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[ReviewPublic]:
    if after is None:
        rows = await conn.fetch(FIRST_PAGE, mentor_id, limit)
    else:
        rows = await conn.fetch(NEXT_PAGE, mentor_id, limit, *after)
    return [
        ReviewPublic(
            id=r["id"],
            rating=r["rating"],
            text=r["body"],
            created_at=r["created_at"],
            reviewer_first_name=r["first_name"],
        )
        for r in rows
    ]
