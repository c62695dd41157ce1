"""The stats are cached in the participant's booking namespace and refreshed by the writes that bump
it: `invalidate_participants` (every booking mutation calls it after commit) and createReview."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from booking_history import Client, History, User
from stats_helpers import read_stats

from devhost.testing import HostThread
from shared import resources
from shared.bookings.caching import invalidate_participants

PAST = datetime.now(UTC).replace(microsecond=0) - timedelta(days=7)


def invalidate(app_host: HostThread, student: User, mentor: User) -> None:
    async def bump() -> None:
        await invalidate_participants(await resources.get_cache(), student_id=student.id, mentor_id=mentor.id)

    app_host.call(bump())


async def test_a_booking_change_shows_after_invalidate_participants(
    api: Client, history: History, app_host: HostThread
) -> None:
    student, mentor = await history.user("student"), await history.mentor()
    booking = await history.booking(student, mentor, status="confirmed", start=PAST)
    before = (await read_stats(api, student), await read_stats(api, mentor))
    assert before[0]["sessions_completed"] == 0 and before[1]["sessions_completed"] == 0

    # A write that does not invalidate stays unseen: the figures come from the cache.
    await history.conn.execute("UPDATE bookings SET status = 'completed' WHERE id = $1", booking)
    assert (await read_stats(api, student), await read_stats(api, mentor)) == before

    invalidate(app_host, student, mentor)
    after_student, after_mentor = await read_stats(api, student), await read_stats(api, mentor)
    assert after_student["sessions_completed"] == 1 and after_student["hours_completed"] == 1.0
    assert after_mentor["sessions_completed"] == 1
    assert after_mentor["earnings"] == [{"currency": "INR", "amount_minor": 85_000}]


async def test_invalidating_one_pair_leaves_other_participants_cached(
    api: Client, history: History, app_host: HostThread
) -> None:
    student, mentor, bystander = await history.user("student"), await history.mentor(), await history.user("student")
    await read_stats(api, student)
    cached = await read_stats(api, bystander)
    await history.booking(bystander, mentor, status="completed", start=PAST)
    invalidate(app_host, student, mentor)
    assert await read_stats(api, bystander) == cached


async def test_a_review_refreshes_both_participants_stats(api: Client, history: History) -> None:
    student, mentor = await history.user("student"), await history.mentor()
    booking = await history.booking(student, mentor, status="completed", start=PAST)
    mentor_before, student_before = await read_stats(api, mentor), await read_stats(api, student)
    assert (mentor_before["rating"], mentor_before["rating_count"]) == (0.0, 0)

    # Written behind the cache's back: only the review's invalidation can make it appear.
    await history.booking(student, mentor, status="completed", start=PAST - timedelta(days=1))
    assert await read_stats(api, student) == student_before

    reply = await api.call("POST", f"bookings/{booking}/review", {"rating": 4, "text": "Good"}, user=student)
    assert reply.status == 201, reply.body
    mentor_after, student_after = await read_stats(api, mentor), await read_stats(api, student)
    assert (mentor_after["rating"], mentor_after["rating_count"]) == (4.0, 1)
    assert mentor_after["sessions_completed"] == 2
    assert student_after["sessions_completed"] == 2
