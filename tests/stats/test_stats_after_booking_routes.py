"""End to end with the bookings routes: completing or cancelling a booking through its route shows in
the stats read right after, and a booking completed through its route can then be reviewed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from booking_history import Client, History
from stats_helpers import read_stats

NOW = datetime.now(UTC).replace(microsecond=0)


async def test_completing_through_the_status_route_shows_in_both_participants_stats(
    api: Client, history: History
) -> None:
    student, mentor = await history.user("student"), await history.mentor()
    booking = await history.booking(student, mentor, status="confirmed", start=NOW - timedelta(hours=2), minutes=90)
    student_before, mentor_before = await read_stats(api, student), await read_stats(api, mentor)
    assert student_before["sessions_completed"] == 0 and mentor_before["earnings"] == []

    reply = await api.call("PATCH", f"bookings/{booking}/status", {"status": "completed"}, user=mentor)
    assert reply.status == 200, reply.body

    student_after, mentor_after = await read_stats(api, student), await read_stats(api, mentor)
    assert (student_after["sessions_completed"], student_after["hours_completed"]) == (1, 1.5)
    assert student_after["spend"] == student_before["spend"] == [{"currency": "INR", "amount_minor": 100_000}]
    assert (mentor_after["sessions_completed"], mentor_after["hours_completed"]) == (1, 1.5)
    assert mentor_after["earnings"] == [{"currency": "INR", "amount_minor": 85_000}]

    review = await api.call("POST", f"bookings/{booking}/review", {"rating": 5, "text": "Thanks"}, user=student)
    assert review.status == 201, review.body
    assert (await read_stats(api, mentor))["rating_count"] == 1


async def test_cancelling_through_the_cancel_route_shows_in_both_participants_stats(
    api: Client, history: History
) -> None:
    student, mentor = await history.user("student"), await history.mentor()
    booking = await history.booking(student, mentor, status="confirmed", start=NOW + timedelta(days=5))
    student_before, mentor_before = await read_stats(api, student), await read_stats(api, mentor)
    assert student_before["upcoming"] == 1 and mentor_before["upcoming"] == 1
    assert student_before["spend"] == [{"currency": "INR", "amount_minor": 100_000}]

    reply = await api.call("POST", f"bookings/{booking}/cancel", {"reason": "Exams moved"}, user=student)
    assert reply.status == 200, reply.body
    assert reply.body["refund_due_minor"] == 100_000  # days before the start: a full refund

    student_after, mentor_after = await read_stats(api, student), await read_stats(api, mentor)
    assert student_after["upcoming"] == 0 and student_after["spend"] == []
    assert mentor_after["upcoming"] == 0
