"""GET /api/students/me/stats and GET /api/mentors/me/stats over HTTP on a history seeded with SQL:
every status, three currencies, refunds, commissions that need rounding, the past and the future."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from booking_history import Client, History, User, is_problem
from stats_helpers import read_stats

NOW = datetime.now(UTC).replace(microsecond=0)


def days(n: int, hour: int = 12) -> datetime:
    """Noon (or `hour`) n days from now (negative: in the past); each pending or confirmed booking gets
    its own day."""
    return (NOW + timedelta(days=n)).replace(hour=hour, minute=0, second=0)


async def stats(api: Client, user: User) -> dict[str, Any]:
    """The caller's stats without `as_of`, which must be the time of the read."""
    body = await read_stats(api, user)
    assert datetime.fromisoformat(body.pop("as_of")) >= NOW
    return body


async def test_stats_on_a_seeded_history(api: Client, history: History) -> None:
    student, other = await history.user("student"), await history.user("student")
    mentor, second_mentor = await history.mentor(), await history.mentor()
    book = history.booking

    # The student's bookings.
    await book(
        student, mentor, status="completed", start=days(-30), minutes=60, price_minor=100_000, commission_bps=1500
    )
    await book(
        student,
        mentor,
        status="completed",
        start=days(-20),
        minutes=30,
        currency="USD",
        price_minor=2999,
        commission_bps=1250,
    )  # commission 374.875 -> 375
    await book(
        student, second_mentor, status="completed", start=days(-10), minutes=45, price_minor=50_000, commission_bps=1000
    )
    # The student missed it and the policy still refunded part: spent 80,000; the mentor is paid in full.
    await book(student, mentor, status="no_show", start=days(-9), price_minor=100_000, refund_due_minor=20_000)
    # The mentor missed it: fully refunded, nothing earned.
    await book(
        student,
        mentor,
        status="no_show",
        no_show_party="mentor",
        start=days(-8),
        price_minor=80_000,
        refund_due_minor=80_000,
    )
    # Paid, then cancelled late: the policy kept 50,000, spent by the student and earned by the mentor
    # less the commission on it (7,500).
    await book(
        student, mentor, status="cancelled", paid=True, start=days(-7), price_minor=100_000, refund_due_minor=50_000
    )
    # Cancelled before it was paid: nothing spent or earned.
    await book(student, mentor, status="cancelled", start=days(-6, 15), price_minor=100_000, refund_due_minor=0)
    await book(student, mentor, status="expired", start=days(-6), price_minor=100_000)
    # Confirmed but its start has passed (not marked yet): paid, not upcoming.
    await book(
        student, mentor, status="confirmed", start=days(-1), currency="EUR", price_minor=7000, commission_bps=2000
    )
    await book(student, mentor, status="confirmed", start=days(2), price_minor=100_000)
    await book(student, second_mentor, status="pending_payment", start=days(3), currency="USD", price_minor=5000)
    # Paid and refunded in full: nothing kept, no entry of its own.
    await book(
        student,
        second_mentor,
        status="cancelled",
        paid=True,
        start=days(4),
        price_minor=50_000,
        refund_due_minor=50_000,
    )

    # Another student's bookings with the same mentor.
    await book(other, mentor, status="completed", start=days(-5), minutes=60, price_minor=200_000, commission_bps=0)
    await book(
        other,
        mentor,
        status="completed",
        start=days(-4),
        minutes=60,
        currency="USD",
        price_minor=3,
        commission_bps=5000,
    )  # commission 1.5 -> 2
    await book(other, mentor, status="pending_payment", start=days(5), price_minor=100_000)
    # Paid, then cancelled late with half refunded: 999 kept, its commission 124.875 -> 125.
    await book(
        other,
        mentor,
        status="cancelled",
        paid=True,
        start=days(-3),
        currency="USD",
        price_minor=1999,
        refund_due_minor=1000,
        commission_bps=1250,
    )

    assert await stats(api, student) == {
        "sessions_completed": 3,
        "upcoming": 2,
        "hours_completed": 2.25,
        "spend": [
            {"currency": "EUR", "amount_minor": 7000},
            {"currency": "INR", "amount_minor": 100_000 + 50_000 + 80_000 + 0 + 50_000 + 100_000},
            {"currency": "USD", "amount_minor": 2999},
        ],
    }
    assert await stats(api, other) == {
        "sessions_completed": 2,
        "upcoming": 1,
        "hours_completed": 2.0,
        "spend": [{"currency": "INR", "amount_minor": 200_000}, {"currency": "USD", "amount_minor": 3 + 999}],
    }
    assert await stats(api, mentor) == {
        "sessions_completed": 4,
        "upcoming": 2,
        "hours_completed": 3.5,
        "earnings": [
            {"currency": "INR", "amount_minor": 85_000 + 85_000 + (50_000 - 7_500) + 200_000},
            {"currency": "USD", "amount_minor": (2999 - 375) + (3 - 2) + (999 - 125)},
        ],
        "rating": 0.0,
        "rating_count": 0,
    }
    assert await stats(api, second_mentor) == {
        "sessions_completed": 1,
        "upcoming": 1,
        "hours_completed": 0.75,
        "earnings": [{"currency": "INR", "amount_minor": 45_000}],
        "rating": 0.0,
        "rating_count": 0,
    }


async def test_the_mentor_stats_carry_the_rating_of_the_mentors_row(api: Client, history: History) -> None:
    mentor = await history.mentor()
    await history.conn.execute("UPDATE mentors SET rating = 4.67, rating_count = 3 WHERE id = $1", mentor.id)
    body = await stats(api, mentor)
    assert (body["rating"], body["rating_count"]) == (4.67, 3)


async def test_stats_without_bookings_are_zero(api: Client, history: History) -> None:
    assert await stats(api, await history.user("student")) == {
        "sessions_completed": 0,
        "upcoming": 0,
        "hours_completed": 0.0,
        "spend": [],
    }
    assert await stats(api, await history.mentor()) == {
        "sessions_completed": 0,
        "upcoming": 0,
        "hours_completed": 0.0,
        "earnings": [],
        "rating": 0.0,
        "rating_count": 0,
    }


async def test_a_mentor_without_a_profile_has_no_stats(api: Client, history: History) -> None:
    reply = await api.call("GET", "mentors/me/stats", user=await history.user("mentor"))
    assert is_problem(reply, 404, "mentor_not_found")


async def test_each_role_reads_only_its_own_stats(api: Client, history: History) -> None:
    student, mentor, admin = await history.user("student"), await history.mentor(), await history.user("admin")
    for path in ("students/me/stats", "mentors/me/stats"):
        assert is_problem(await api.call("GET", path), 401, "missing_token")
        assert is_problem(await api.call("GET", path, user=admin), 403, "forbidden")
    assert is_problem(await api.call("GET", "students/me/stats", user=mentor), 403, "forbidden")
    assert is_problem(await api.call("GET", "mentors/me/stats", user=student), 403, "forbidden")
    # There is no route to name somebody else: stats are only ever the caller's.
    other = await history.user("student")
    assert (await api.call("GET", f"students/{other.id}/stats", user=student)).status == 404
    assert (await api.call("GET", f"mentors/{mentor.id}/stats", user=student)).status == 404
    assert (await api.call("GET", f"mentors/{uuid.uuid4()}/stats", user=mentor)).status == 404
