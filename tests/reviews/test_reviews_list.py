"""GET /api/mentors/{id}/reviews over HTTP: newest first in keyset pages that neither skip nor repeat,
reviewers by first name only, and only for listed mentors."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from booking_history import Client, History, User, is_problem

START = datetime(2026, 1, 5, 9, tzinfo=UTC)


async def reviewed_mentor(history: History, created: list[datetime]) -> tuple[User, list[uuid.UUID]]:
    """A mentor with one review per entry of `created`, each by a new student, written at that time."""
    mentor = await history.mentor()
    ids = []
    for n, at in enumerate(created):
        student = await history.user("student", name=f"Student{n} Lastname{n}")
        booking = await history.booking(student, mentor, status="completed", start=START + timedelta(days=n))
        ids.append(await history.review(booking, rating=1 + n % 5, created_at=at, text=f"review {n}"))
    return mentor, ids


async def page(api: Client, mentor: User, **params: Any) -> dict[str, Any]:
    reply = await api.call("GET", f"mentors/{mentor.id}/reviews?" + urlencode(params))
    assert reply.status == 200, reply.body
    body: dict[str, Any] = reply.body
    return body


async def test_pages_walk_the_reviews_newest_first_without_gaps_or_repeats(api: Client, history: History) -> None:
    # Three pairs written at the same instant: the id breaks the tie, and a page may end inside a pair.
    times = [START + timedelta(hours=h) for h in (5, 1, 3, 3, 7, 1, 2, 7, 4)]
    mentor, ids = await reviewed_mentor(history, times)
    expected = [str(i) for _, i in sorted(zip(times, ids, strict=True), reverse=True)]

    whole = await page(api, mentor, limit=50)
    assert [r["id"] for r in whole["data"]] == expected and whole["next_cursor"] is None

    walked: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        current = await page(api, mentor, **params)
        assert len(current["data"]) <= 2
        walked += [r["id"] for r in current["data"]]
        cursor = current["next_cursor"]
        if cursor is None:
            break
    assert walked == expected


async def test_a_review_shows_rating_text_time_and_the_reviewers_first_name_only(api: Client, history: History) -> None:
    mentor = await history.mentor()
    student = await history.user("student", name="  Asha   Verma ")
    booking = await history.booking(student, mentor, status="completed", start=START)
    created = await api.call("POST", f"bookings/{booking}/review", {"rating": 5, "text": "Superb"}, user=student)
    assert created.status == 201

    (shown,) = (await page(api, mentor))["data"]
    assert shown == {
        "id": created.body["id"],
        "rating": 5,
        "text": "Superb",
        "created_at": created.body["created_at"],
        "reviewer_first_name": "Asha",
    }
    email = await history.conn.fetchval("SELECT email FROM users WHERE id = $1", student.id)
    reply = await api.call("GET", f"mentors/{mentor.id}/reviews")
    assert email not in str(reply.body) and "Verma" not in str(reply.body) and str(student.id) not in str(reply.body)


async def test_a_deleted_reviewers_name_is_not_shown(api: Client, history: History) -> None:
    mentor, (review_id,) = await reviewed_mentor(history, [START])
    student_id = await history.conn.fetchval("SELECT student_id FROM reviews WHERE id = $1", review_id)
    await history.conn.execute(
        "UPDATE users SET status = 'deleted', name = 'Deleted user', password_hash = NULL WHERE id = $1", student_id
    )
    (shown,) = (await page(api, mentor))["data"]
    assert shown["id"] == str(review_id) and shown["reviewer_first_name"] is None


async def test_a_mentor_without_reviews_has_an_empty_page(api: Client, history: History) -> None:
    assert await page(api, await history.mentor()) == {"data": [], "next_cursor": None}


async def test_reviews_of_an_unlisted_or_unknown_mentor_are_404(api: Client, history: History) -> None:
    mentor, _ = await reviewed_mentor(history, [START])
    await history.conn.execute("UPDATE mentors SET is_active = false WHERE id = $1", mentor.id)
    assert is_problem(await api.call("GET", f"mentors/{mentor.id}/reviews"), 404, "mentor_not_found")
    assert is_problem(await api.call("GET", f"mentors/{uuid.uuid4()}/reviews"), 404, "mentor_not_found")
    student = await history.user("student")  # a user without a mentor profile
    assert is_problem(await api.call("GET", f"mentors/{student.id}/reviews"), 404, "mentor_not_found")


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": 0}, "validation_failed"),
        ({"limit": 51}, "validation_failed"),
        ({"limit": "ten"}, "validation_failed"),
        ({"cursor": "x" * 201}, "validation_failed"),
        ({"sort": "oldest"}, "validation_failed"),
        ({"cursor": "garbage!"}, "invalid_cursor"),
        ({"cursor": _cursor(f'["2026-01-05T09:00:00","{uuid.uuid4()}"]')}, "invalid_cursor"),  # no zone
        ({"cursor": _cursor('["2026-01-05T09:00:00+00:00","not-a-uuid"]')}, "invalid_cursor"),
        ({"cursor": _cursor(f'["0001-01-01T00:00:00+05:00","{uuid.uuid4()}"]')}, "invalid_cursor"),
        ({"cursor": _cursor(f'["2026-01-05T09:00:00+00:00","{uuid.uuid4()}",1]')}, "invalid_cursor"),
        ({"cursor": _cursor("yesterday")}, "invalid_cursor"),
    ],
)
async def test_bad_query_parameters_are_422(api: Client, history: History, params: dict[str, Any], code: str) -> None:
    mentor, _ = await reviewed_mentor(history, [START])
    reply = await api.call("GET", f"mentors/{mentor.id}/reviews?" + urlencode(params))
    assert is_problem(reply, 422, code), reply.body
