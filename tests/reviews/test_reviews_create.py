"""POST /api/bookings/{id}/review over HTTP: who may review what and when, one review per booking even
under concurrent submits, and the mentor's rating aggregate as discovery shows it right after."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from booking_history import Client, History, User, is_problem

PAST = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)


async def completed_booking(history: History, student: User, mentor: User, *, days_ago: int = 3) -> uuid.UUID:
    return await history.booking(student, mentor, status="completed", start=PAST - timedelta(days=days_ago))


async def review(api: Client, user: User, booking_id: uuid.UUID, rating: Any = 5, text: str = "Great") -> Any:
    return await api.call("POST", f"bookings/{booking_id}/review", {"rating": rating, "text": text}, user=user)


async def listed_stats(api: Client, skill: str, mentor: User) -> dict[str, Any]:
    reply = await api.call("GET", "mentors?" + urlencode({"skill": skill}))
    assert reply.status == 200, reply.body
    entry = next(m for m in reply.body["data"] if m["id"] == str(mentor.id))
    stats: dict[str, Any] = entry["stats"]
    return stats


async def test_the_student_reviews_a_completed_booking(api: Client, history: History) -> None:
    student, mentor = await history.user("student"), await history.mentor()
    booking = await completed_booking(history, student, mentor)
    reply = await review(api, student, booking, rating=4, text="  Clear explanations.  ")
    assert reply.status == 201, reply.body
    assert reply.body["booking_id"] == str(booking) and reply.body["mentor_id"] == str(mentor.id)
    assert reply.body["rating"] == 4 and reply.body["text"] == "Clear explanations."
    profile = await api.call("GET", f"mentors/{mentor.id}")
    assert profile.body["stats"] == {"rating_average": 4.0, "rating_count": 1}


async def test_the_average_and_count_follow_every_review_and_discovery_is_never_stale(
    api: Client, history: History
) -> None:
    skill = f"skill-{uuid.uuid4().hex[:10]}"
    mentor = await history.mentor(skill=skill)
    ratings = [5, 4, 4, 2, 5, 3]
    for n, rating in enumerate(ratings, start=1):
        student = await history.user("student")
        booking = await completed_booking(history, student, mentor, days_ago=n)
        before = await listed_stats(api, skill, mentor)
        assert await listed_stats(api, skill, mentor) == before  # served from mentors:list
        assert (await review(api, student, booking, rating=rating)).status == 201
        expected = round(sum(ratings[:n]) / n, 2)
        assert await listed_stats(api, skill, mentor) == {"rating_average": expected, "rating_count": n}
    assert expected == 3.83


@pytest.mark.parametrize("status", ["pending_payment", "confirmed", "cancelled", "expired", "no_show"])
async def test_only_a_completed_booking_can_be_reviewed(api: Client, history: History, status: str) -> None:
    student, mentor = await history.user("student"), await history.mentor()
    booking = await history.booking(student, mentor, status=status, start=PAST)
    reply = await review(api, student, booking)
    assert is_problem(reply, 409, "booking_not_completed")
    assert reply.body["status"] == status
    assert (await api.call("GET", f"mentors/{mentor.id}")).body["stats"]["rating_count"] == 0


async def test_only_the_bookings_student_may_review_it(api: Client, history: History) -> None:
    student, mentor = await history.user("student"), await history.mentor()
    booking = await completed_booking(history, student, mentor)
    other_student, other_mentor = await history.user("student"), await history.mentor()
    admin = await history.user("admin")

    assert is_problem(await review(api, other_student, booking), 404, "booking_not_found")
    assert is_problem(await review(api, mentor, booking), 403, "forbidden")
    assert is_problem(await review(api, other_mentor, booking), 403, "forbidden")
    assert is_problem(await review(api, admin, booking), 403, "forbidden")
    assert is_problem(await review(api, student, uuid.uuid4()), 404, "booking_not_found")
    anonymous = await api.call("POST", f"bookings/{booking}/review", {"rating": 5, "text": ""})
    assert is_problem(anonymous, 401, "missing_token")

    assert (await review(api, student, booking)).status == 201  # nothing above used up the one review


async def test_a_booking_gets_one_review(api: Client, history: History) -> None:
    student, mentor = await history.user("student"), await history.mentor()
    booking = await completed_booking(history, student, mentor)
    assert (await review(api, student, booking, rating=5)).status == 201
    assert is_problem(await review(api, student, booking, rating=1), 409, "already_reviewed")
    assert (await api.call("GET", f"mentors/{mentor.id}")).body["stats"] == {"rating_average": 5.0, "rating_count": 1}


async def test_concurrent_double_submits_store_one_review(api: Client, history: History) -> None:
    student, mentor = await history.user("student"), await history.mentor()
    booking = await completed_booking(history, student, mentor)
    replies = await asyncio.gather(*(review(api, student, booking, rating=1 + n % 5) for n in range(12)))
    statuses = sorted(r.status for r in replies)
    assert statuses == [201] + [409] * 11, [r.body for r in replies]
    assert all(is_problem(r, 409, "already_reviewed") for r in replies if r.status == 409)
    winner = next(r.body for r in replies if r.status == 201)
    stats = (await api.call("GET", f"mentors/{mentor.id}")).body["stats"]
    assert stats == {"rating_average": float(winner["rating"]), "rating_count": 1}


async def test_concurrent_reviews_of_one_mentor_all_count(api: Client, history: History) -> None:
    mentor = await history.mentor()
    students = [await history.user("student") for _ in range(10)]
    bookings = [await completed_booking(history, s, mentor, days_ago=n) for n, s in enumerate(students, start=1)]
    ratings = [5, 4, 3, 5, 5, 1, 2, 4, 4, 5]
    submits = (review(api, s, b, rating=r) for s, b, r in zip(students, bookings, ratings, strict=True))
    replies = await asyncio.gather(*submits)
    assert [r.status for r in replies] == [201] * 10, [r.body for r in replies]
    stats = (await api.call("GET", f"mentors/{mentor.id}")).body["stats"]
    assert stats == {"rating_average": round(sum(ratings) / 10, 2), "rating_count": 10}


@pytest.mark.parametrize(
    "body",
    [
        {"rating": 0, "text": "zero stars"},
        {"rating": 6, "text": "six stars"},
        {"rating": -1},
        {"rating": "5", "text": "a string"},
        {"rating": 4.5},
        {"rating": True},
        {"rating": None},
        {"text": "no rating"},
        {"rating": 5, "text": "x" * 5001},
        {"rating": 5, "text": 42},
        {"rating": 5, "stars": 5},
        [],
        None,
    ],
)
async def test_a_bad_body_is_422_and_stores_nothing(api: Client, history: History, body: Any) -> None:
    student, mentor = await history.user("student"), await history.mentor()
    booking = await completed_booking(history, student, mentor)
    reply = await api.call("POST", f"bookings/{booking}/review", body, user=student)
    assert is_problem(reply, 422, "validation_failed"), reply.body
    assert "input" not in str(reply.body)
    assert (await review(api, student, booking)).status == 201  # the booking can still be reviewed


async def test_malformed_json_and_other_media_types_are_refused(api: Client, history: History) -> None:
    student, mentor = await history.user("student"), await history.mentor()
    booking = await completed_booking(history, student, mentor)
    broken = await api.call("POST", f"bookings/{booking}/review", raw=b'{"rating": 5,', user=student)
    assert is_problem(broken, 400, "malformed_json")
    async with api.http.post(
        f"{api.base}/api/bookings/{booking}/review",
        data=b"rating=5",
        headers={"Authorization": f"Bearer {student.token}", "Content-Type": "application/x-www-form-urlencoded"},
    ) as response:
        assert response.status == 415
    not_a_guid = await api.call("POST", "bookings/not-a-guid/review", {"rating": 5}, user=student)
    assert not_a_guid.status == 404


async def test_a_failed_rating_update_rolls_the_review_back(api: Client, history: History) -> None:
    """The review and the mentor's aggregate are one transaction. A database failure of the aggregate
    update is the server's fault, not the student's: 500 internal_error as problem+json, no review
    stored and the rating unchanged, so the same review can be submitted again once it is fixed."""
    student, mentor = await history.user("student"), await history.mentor()
    booking = await completed_booking(history, student, mentor)
    name = f"refuse_rating_{mentor.id.hex}"
    await history.conn.execute(
        f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'the rating update failed (test)'; END $$;
            CREATE TRIGGER {name} BEFORE UPDATE ON mentors FOR EACH ROW
            WHEN (NEW.id = '{mentor.id}'::uuid) EXECUTE FUNCTION {name}();"""
    )
    try:
        failed = await review(api, student, booking, rating=2)
    finally:
        await history.conn.execute(f"DROP TRIGGER {name} ON mentors; DROP FUNCTION {name}();")
    assert is_problem(failed, 500, "internal_error"), failed.body
    assert await history.conn.fetchval("SELECT count(*) FROM reviews WHERE booking_id = $1", booking) == 0
    assert (await api.call("GET", f"mentors/{mentor.id}")).body["stats"] == {"rating_average": 0.0, "rating_count": 0}
    again = await review(api, student, booking, rating=2)
    assert again.status == 201, again.body
