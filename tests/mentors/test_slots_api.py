"""Availability and GET /api/mentors/{id}/slots over HTTP, including a real DST change ahead."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from api_support import Client, MakeUser, User
from test_mentors_api import is_problem, new_mentor

NEW_YORK = ZoneInfo("America/New_York")


def next_dst_sunday(zone: ZoneInfo) -> date:
    """The next Sunday (at least 3 days away) on which `zone` changes its UTC offset."""
    day = datetime.now(UTC).date() + timedelta(days=3)
    for _ in range(400):
        start = datetime(day.year, day.month, day.day, tzinfo=zone)
        if day.isoweekday() == 7 and start.utcoffset() != (start + timedelta(days=1)).astimezone(zone).utcoffset():
            return day
        day += timedelta(days=1)
    raise AssertionError("no DST change within a year")


async def mentor_with(api: Client, make_user: MakeUser, availability: dict[str, Any], **profile: Any) -> User:
    user, _ = await new_mentor(api, make_user, **profile)
    reply = await api.call("PUT", "mentors/me/availability", availability, user=user)
    assert reply.status == 200, reply.body
    return user


async def slots(api: Client, mentor: User, **params: Any) -> Any:
    return await api.call("GET", f"mentors/{mentor.id}/slots?" + urlencode(params))


async def test_slots_across_a_dst_change_are_shown_in_the_askers_zone(api: Client, make_user: MakeUser) -> None:
    sunday = next_dst_sunday(NEW_YORK)
    monday = sunday + timedelta(days=1)
    availability = {
        "weekly": [{"weekday": 7, "start": "01:00", "end": "04:00"}, {"weekday": 1, "start": "09:00", "end": "10:00"}],
        "booking_window_days": 365,
        "session_lengths": [60, 30],
    }
    mentor = await mentor_with(api, make_user, availability, timezone="America/New_York")
    reply = await slots(api, mentor, **{"from": sunday.isoformat(), "to": monday.isoformat(), "tz": "Asia/Tokyo"})
    assert reply.status == 200, reply.body
    assert reply.body["length_minutes"] == 30 and reply.body["timezone"] == "Asia/Tokyo"
    starts = [datetime.fromisoformat(s["start"]) for s in reply.body["slots"]]
    assert all(s.utcoffset() == timedelta(hours=9) for s in starts)  # shown in the asker's zone
    # Expected: each local wall time in New York, converted by zoneinfo for its own date.
    expected_sunday_hours = 2 if sunday.month in (3, 4) else 4  # spring forward loses an hour, fall back gains one
    sunday_slots = [s for s in starts if s.astimezone(NEW_YORK).date() == sunday]
    monday_slots = [s for s in starts if s.astimezone(NEW_YORK).date() == monday]
    assert len(sunday_slots) == expected_sunday_hours * 2
    assert [s.astimezone(NEW_YORK).strftime("%H:%M") for s in monday_slots] == ["09:00", "09:30"]
    # Tokyo's Monday ends at 15:00 UTC; New York's Monday 09:00 is 13:00 or 14:00 UTC, so both are in range.
    assert sunday_slots[0].astimezone(NEW_YORK).strftime("%H:%M") == "01:00"
    assert sunday_slots[-1] - sunday_slots[0] == timedelta(hours=expected_sunday_hours) - timedelta(minutes=30)


async def test_overrides_notice_and_length_through_the_route(api: Client, make_user: MakeUser) -> None:
    today = datetime.now(UTC).date()
    day_off, extra = today + timedelta(days=3), today + timedelta(days=4)
    availability = {
        "weekly": [{"weekday": d, "start": "10:00", "end": "12:00"} for d in range(1, 8)],
        "overrides": [{"date": day_off.isoformat()}, {"date": extra.isoformat(), "start": "20:00", "end": "21:00"}],
        "min_notice_minutes": 2 * 24 * 60,
        "booking_window_days": 30,
        "session_lengths": [60],
    }
    mentor = await mentor_with(api, make_user, availability, timezone="UTC")
    reply = await slots(api, mentor, **{"from": today.isoformat(), "to": extra.isoformat()})
    assert reply.status == 200, reply.body
    by_day: dict[str, list[str]] = {}
    for slot in reply.body["slots"]:
        start = datetime.fromisoformat(slot["start"])
        by_day.setdefault(start.date().isoformat(), []).append(start.strftime("%H:%M"))
    assert today.isoformat() not in by_day and (today + timedelta(days=1)).isoformat() not in by_day  # notice
    assert day_off.isoformat() not in by_day
    assert by_day[extra.isoformat()] == ["10:00", "11:00", "20:00"]
    unsupported = await slots(api, mentor, **{"from": today.isoformat(), "to": today.isoformat(), "length": 30})
    assert is_problem(unsupported, 422, "unsupported_session_length")


async def test_the_mentor_reads_back_the_schedule_it_set(api: Client, make_user: MakeUser) -> None:
    availability = {
        "weekly": [{"weekday": 2, "start": "09:00:00", "end": "17:30:00"}],
        "overrides": [{"date": "2030-01-01", "start": None, "end": None}],
        "min_notice_minutes": 60,
        "booking_window_days": 14,
        "session_lengths": [45],
    }
    mentor = await mentor_with(api, make_user, availability)
    reply = await api.call("GET", "mentors/me/availability", user=mentor)
    assert reply.status == 200
    assert reply.body == availability


async def test_hours_can_end_at_24_00_so_the_last_hour_of_a_day_is_bookable(api: Client, make_user: MakeUser) -> None:
    day = datetime.now(UTC).date() + timedelta(days=3)
    extra = day + timedelta(days=1)
    availability = {
        "weekly": [{"weekday": day.isoweekday(), "start": "22:00", "end": "24:00"}],
        "overrides": [{"date": extra.isoformat(), "start": "23:00", "end": "24:00"}],
        "session_lengths": [60],
    }
    kolkata = ZoneInfo("Asia/Kolkata")
    mentor = await mentor_with(api, make_user, availability, timezone="Asia/Kolkata")
    reply = await slots(api, mentor, **{"from": day.isoformat(), "to": extra.isoformat(), "tz": "Asia/Kolkata"})
    assert reply.status == 200, reply.body
    offered = [(datetime.fromisoformat(x["start"]), datetime.fromisoformat(x["end"])) for x in reply.body["slots"]]
    assert [s.strftime("%Y-%m-%d %H:%M") for s, _ in offered] == [
        f"{day} 22:00",
        f"{day} 23:00",
        f"{extra} 23:00",
    ]
    assert offered[-1][1] == datetime.combine(extra + timedelta(days=1), time(0), tzinfo=kolkata)

    own = await api.call("GET", "mentors/me/availability", user=mentor)
    assert [w["end"] for w in own.body["weekly"]] == ["24:00:00"]
    assert [o["end"] for o in own.body["overrides"]] == ["24:00:00"]

    booking = {"mentor_id": str(mentor.id), "start": offered[-1][0].isoformat(), "length_minutes": 60}
    booked = await api.call("POST", "bookings", booking, user=await make_user("student"))
    assert booked.status == 201, booked.body
    assert datetime.fromisoformat(booked.body["end"]) == offered[-1][1]

    # An end of 00:00 is the same midnight.
    midnight = {"weekly": [{"weekday": 1, "start": "20:00", "end": "00:00"}]}
    assert (await api.call("PUT", "mentors/me/availability", midnight, user=mentor)).status == 200
    own = await api.call("GET", "mentors/me/availability", user=mentor)
    assert own.body["weekly"] == [{"weekday": 1, "start": "20:00:00", "end": "24:00:00"}]


@pytest.mark.parametrize(
    "availability",
    [
        {"weekly": [{"weekday": 8, "start": "09:00", "end": "10:00"}]},
        {"weekly": [{"weekday": 1, "start": "10:00", "end": "09:00"}]},
        {"weekly": [{"weekday": 1, "start": "25:00", "end": "26:00"}]},
        {"weekly": [{"weekday": 1, "start": "24:00", "end": "24:00"}]},
        {"weekly": [{"weekday": 1, "start": "23:00", "end": "24:30"}]},
        {"weekly": [{"weekday": 1, "start": "23:00", "end": "24:00:01"}]},
        {"weekly": [{"weekday": 1, "start": "23:00", "end": "24:00+05:30"}]},
        {"overrides": [{"date": "2030-01-01", "start": "24:00", "end": "24:00"}]},
        {"overrides": [{"date": "2030-01-01", "start": "09:00"}]},
        {"overrides": [{"date": "2030-02-30"}]},
        {"overrides": [{"date": "2030-01-01T00:00:00+05:30"}]},
        {"session_lengths": [30, 30]},
        {"session_lengths": []},
        {"session_lengths": [5]},
        {"min_notice_minutes": -1},
        {"booking_window_days": 0},
        {"timezone": "UTC"},  # the zone belongs to the profile (PATCH /mentors/me)
        # Two rules for one weekday and start: the (weekday, start) pair identifies a rule.
        {
            "weekly": [
                {"weekday": 1, "start": "09:00", "end": "10:00"},
                {"weekday": 1, "start": "09:00", "end": "12:00"},
            ]
        },
        {
            "weekly": [
                {"weekday": 3, "start": "09:00", "end": "10:00"},
                {"weekday": 3, "start": "09:00", "end": "10:00"},
            ]
        },
    ],
)
async def test_invalid_availability_is_a_422_problem(
    api: Client, make_user: MakeUser, availability: dict[str, Any]
) -> None:
    user, _ = await new_mentor(api, make_user)
    reply = await api.call("PUT", "mentors/me/availability", availability, user=user)
    assert is_problem(reply, 422, "validation_failed")


@pytest.mark.parametrize(
    "params",
    [
        {"to": "2030-01-02"},
        {"from": "2030-01-02", "to": "2030-01-01"},
        {"from": "2030-01-01", "to": "2030-06-01"},
        {"from": "2030-01-01", "to": "2030-01-02", "tz": "Nowhere/City"},
        {"from": "yesterday", "to": "2030-01-02"},
        {"from": "2030-01-01", "to": "2030-01-02", "length": 0},
        # `from` and `to` are calendar dates in `tz`: an instant (its time and offset would be dropped) is refused.
        {"from": "2030-01-01T00:00:00+05:30", "to": "2030-01-02"},
        {"from": "2030-01-01", "to": "2030-01-02T00:00:00Z"},
        {"from": "2030-01-01T00:00", "to": "2030-01-02"},
        {"from": "1893456000", "to": "2030-01-02"},  # a Unix time
        {"from": "2030-1-1", "to": "2030-01-02"},
        # Names a host's zone database may hold that are no IANA zone, or mean the host's own setting.
        {"from": "2030-01-01", "to": "2030-01-02", "tz": "localtime"},
        {"from": "2030-01-01", "to": "2030-01-02", "tz": "Factory"},
        {"from": "2030-01-01", "to": "2030-01-02", "tz": "posixrules"},
        {"from": "2030-01-01", "to": "2030-01-02", "tz": "posix/Asia/Kolkata"},
        {"from": "2030-01-01", "to": "2030-01-02", "tz": "right/UTC"},
    ],
)
async def test_bad_slot_queries_are_422_problems(api: Client, make_user: MakeUser, params: dict[str, Any]) -> None:
    mentor, _ = await new_mentor(api, make_user)
    assert is_problem(await slots(api, mentor, **params), 422, "validation_failed")


async def test_slots_of_unknown_or_inactive_mentors_are_404(api: Client, make_user: MakeUser) -> None:
    mentor, _ = await new_mentor(api, make_user)
    query = {"from": "2030-01-01", "to": "2030-01-02"}
    assert (await slots(api, mentor, **query)).status == 200
    await api.call("PUT", f"admin/mentors/{mentor.id}/active", {"active": False}, user=await make_user("admin"))
    assert is_problem(await slots(api, mentor, **query), 404, "mentor_not_found")
    ghost = User(uuid.uuid4(), "mentor", "")
    assert is_problem(await slots(api, ghost, **query), 404, "mentor_not_found")
