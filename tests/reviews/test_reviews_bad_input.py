"""Bad input on the review routes is 422 problem+json over HTTP and stores nothing: NUL in a review's
text, and a cursor forged to carry an instant the database cannot take."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from booking_history import Client, History, is_problem
from forged_cursor import with_instant

START = datetime(2026, 1, 5, 9, tzinfo=UTC)


@pytest.mark.parametrize("text", ["\u0000", "Great\u0000", "  \u0000  "])
async def test_nul_in_the_text_is_422_and_nothing_is_stored(api: Client, history: History, text: str) -> None:
    student, mentor = await history.user("student"), await history.mentor()
    booking = await history.booking(student, mentor, status="completed", start=START)
    reply = await api.call("POST", f"bookings/{booking}/review", {"rating": 5, "text": text}, user=student)
    assert is_problem(reply, 422, "validation_failed"), reply.body
    assert reply.body["errors"][0]["loc"] == ["text"]
    assert await history.conn.fetchval("SELECT count(*) FROM reviews WHERE booking_id = $1", booking) == 0
    assert await history.conn.fetchval("SELECT rating_count FROM mentors WHERE id = $1", mentor.id) == 0


@pytest.mark.parametrize("instant", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "1970-01-01T00:00:00Z"])
async def test_a_cursor_carrying_an_unusable_instant_is_422(api: Client, history: History, instant: str) -> None:
    mentor = await history.mentor()
    for n in range(2):
        student = await history.user("student")
        booking = await history.booking(student, mentor, status="completed", start=START + timedelta(days=n))
        await history.review(booking, rating=5, created_at=START + timedelta(days=n, hours=2))
    first = await api.call("GET", f"mentors/{mentor.id}/reviews?limit=1")
    assert first.status == 200 and first.body["next_cursor"], first.body
    forged = with_instant(first.body["next_cursor"], instant)
    reply = await api.call("GET", f"mentors/{mentor.id}/reviews?" + urlencode({"limit": 1, "cursor": forged}))
    assert is_problem(reply, 422, "invalid_cursor"), reply.body
