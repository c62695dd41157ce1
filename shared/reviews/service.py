"""Review use cases: createReview, which keeps the mentor's rating aggregate in step, and a mentor's
public reviews, newest first.

The aggregate (mentors.rating, mentors.rating_count) is recomputed from the reviews table in the
transaction that inserts the review, under a lock on the mentor row, so concurrent reviews of one
mentor can never leave it counting fewer reviews than exist. After commit, discovery
(`mentors:list`) and both participants' booking caches (lists and stats, which show the rating) are
bumped, so no read that starts after the 201 sees the old rating.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

from shared.bookings.caching import invalidate_participants
from shared.bookings.service import BookingNotFound
from shared.cache.cache import Cache
from shared.db.database import Database
from shared.errors import Conflict, ValidationFailed
from shared.mentors import repository as mentors_repository
from shared.mentors.service import MentorNotFound, invalidate_mentor_list
from shared.reviews import repository
from shared.reviews.models import Review, ReviewCreate, ReviewQuery, ReviewsPage


class BookingNotCompleted(Conflict):
    code = "booking_not_completed"
    title = "Only a completed booking can be reviewed"


class InvalidCursor(ValidationFailed):
    code = "invalid_cursor"
    title = "The cursor is not one this list issued"


async def create_review(
    database: Database, cache: Cache, student_id: uuid.UUID, booking_id: uuid.UUID, data: ReviewCreate
) -> Review:
    """createReview by the booking's student, once the booking is completed; one per booking.

    A booking the caller is not the student of is 404, as if it did not exist (the route already
    turns mentors and admins away with 403). A second review, even one racing the first, is 409
    `already_reviewed` from the unique constraint.
    """
    async with database.transaction() as conn:
        parties = await repository.fetch_booking(conn, booking_id)
        if parties is None or parties.student_id != student_id:
            raise BookingNotFound()
        if parties.status != "completed":
            raise BookingNotCompleted(extra={"status": parties.status})
        review = await repository.insert_review(conn, booking_id, parties, data.rating, data.text)
        average, count = await repository.lock_mentor_and_aggregate(conn, parties.mentor_id)
        await mentors_repository.set_rating(conn, parties.mentor_id, average, count)
    await invalidate_mentor_list(cache)
    await invalidate_participants(cache, student_id=parties.student_id, mentor_id=parties.mentor_id)
    return review


async def list_reviews(database: Database, mentor_id: uuid.UUID, query: ReviewQuery) -> ReviewsPage:
    """GET /api/mentors/{id}/reviews: a listed mentor's reviews, newest first, one keyset page.

    Read from the database each time (an index range scan on reviews_mentor_id_idx), so a new
    review shows at once.
    """
    after = _decode_cursor(query.cursor) if query.cursor is not None else None
    async with database.connection() as conn:
        if await mentors_repository.fetch_mentor(conn, mentor_id, listed_only=True) is None:
            raise MentorNotFound()
        rows = await repository.list_reviews(conn, mentor_id, after, query.limit + 1)
    page = rows[: query.limit]
    next_cursor = _encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > query.limit else None
    return ReviewsPage(data=page, next_cursor=next_cursor)


def _encode_cursor(created_at: datetime, review_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{review_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, review_id = raw.split("|")
        at = datetime.fromisoformat(created_at)
        if at.tzinfo is None:
            raise ValueError("a cursor's time is always zoned")
        return at, uuid.UUID(review_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor() from None
