"""Review use cases: createReview, which keeps the mentor's rating aggregate in step, and a mentor's
public reviews, newest first.

The aggregate (mentors.rating, mentors.rating_count) is recomputed from the reviews table in the
transaction that inserts the review, under a lock on the mentor row, so concurrent reviews of one
mentor can never leave it counting fewer reviews than exist. After commit, discovery
(`mentors:list`) and both participants' booking caches (lists and stats, which show the rating) are
bumped, so no read that starts after the 201 sees the old rating.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from shared.bookings import repository as bookings_repository
from shared.bookings.caching import invalidate_participants
from shared.bookings.service import BookingNotFound
from shared.cache.cache import Cache
from shared.db.database import Database
from shared.errors import Conflict
from shared.http.cursor import Keyset
from shared.mentors import repository as mentors_repository
from shared.mentors.service import MentorNotFound, invalidate_mentor_list
from shared.models import BoundedDatetime
from shared.reviews import repository
from shared.reviews.models import Review, ReviewCreate, ReviewQuery, ReviewsPage


class BookingNotCompleted(Conflict):
    code = "booking_not_completed"
    title = "Only a completed booking can be reviewed"


# A mentor's review pages, newest first: the (created_at, id) of a page's last review.
REVIEWS_CURSOR: Keyset[tuple[datetime, uuid.UUID]] = Keyset(tuple[BoundedDatetime, uuid.UUID])


async def create_review(
    database: Database, cache: Cache, student_id: uuid.UUID, booking_id: uuid.UUID, data: ReviewCreate
) -> Review:
    """createReview by the booking's student, once the booking is completed; one per booking.

    A booking the caller is not the student of is 404, as if it did not exist (the route already
    turns mentors and admins away with 403). A second review, even one racing the first, is 409
    `already_reviewed` from the unique constraint.
    """
    async with database.transaction() as conn:
        booking = await bookings_repository.fetch_booking(conn, booking_id)
        if booking is None or booking.student_id != student_id:
            raise BookingNotFound()
        if booking.status != "completed":
            raise BookingNotCompleted(extra={"status": booking.status})
        review = await repository.insert_review(conn, booking, data.rating, data.text)
        average, count = await repository.lock_mentor_and_aggregate(conn, booking.mentor_id)
        await mentors_repository.set_rating(conn, booking.mentor_id, average, count)
    await invalidate_mentor_list(cache)
    await invalidate_participants(cache, student_id=booking.student_id, mentor_id=booking.mentor_id)
    return review


async def list_reviews(database: Database, mentor_id: uuid.UUID, query: ReviewQuery) -> ReviewsPage:
    """GET /api/mentors/{id}/reviews: a listed mentor's reviews, newest first, one keyset page.

    Read from the database each time (an index range scan on reviews_mentor_id_idx), so a new
    review shows at once.
    """
    after = REVIEWS_CURSOR.decode(query.cursor) if query.cursor is not None else None
    async with database.connection() as conn:
        if await mentors_repository.fetch_mentor(conn, mentor_id, listed_only=True) is None:
            raise MentorNotFound()
        rows = await repository.list_reviews(conn, mentor_id, after, query.limit + 1)
    page = rows[: query.limit]
    next_cursor = REVIEWS_CURSOR.encode((page[-1].created_at, page[-1].id)) if len(rows) > query.limit else None
    return ReviewsPage(data=page, next_cursor=next_cursor)
