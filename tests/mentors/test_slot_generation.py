"""Slot generation tables: weekly hours and overrides in the mentor's zone, across DST changes and up
to 24:00."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.mentors.availability import (
    END_OF_DAY,
    DateOverride,
    Schedule,
    WeeklyHours,
    generate_slots,
    open_hours,
)

SUNDAY, MONDAY, FRIDAY, SATURDAY = 7, 1, 5, 6
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def starts(schedule: Schedule, day: str, minutes: int = 60, now: datetime = LONG_AGO) -> list[str]:
    """Slot starts (UTC, HH:MM) for the mentor-local date `day`."""
    local_day = date.fromisoformat(day)
    begin = datetime.combine(local_day, time(0), tzinfo=schedule.zone)
    finish = datetime.combine(local_day + timedelta(days=1), time(0), tzinfo=schedule.zone)
    slots = generate_slots(schedule, length=timedelta(minutes=minutes), start=begin, end=finish, now=now, busy=())
    return [start.strftime("%d %H:%M") for start, _ in slots]


def wall(text: str) -> time:
    return END_OF_DAY if text == "24:00" else time.fromisoformat(text)


def weekly(zone: str, weekday: int, start: str, end: str, **kwargs: object) -> Schedule:
    hours = WeeklyHours(weekday, wall(start), wall(end))
    return Schedule(ZoneInfo(zone), weekly=(hours,), booking_window=timedelta(days=3650), **kwargs)  # type: ignore[arg-type]


# zone, local date (weekday given), weekly hours, session minutes, expected UTC starts (day HH:MM)
DST_TABLE = [
    # New York springs forward at 02:00 -> 03:00 on 2026-03-08: 01:00-04:00 local is 2 real hours.
    ("America/New_York", "2026-03-08", SUNDAY, "01:00", "04:00", 60, ["08 06:00", "08 07:00"]),
    # ...and falls back at 02:00 -> 01:00 on 2026-11-01: 01:00-03:00 local is 3 real hours.
    ("America/New_York", "2026-11-01", SUNDAY, "01:00", "03:00", 60, ["01 05:00", "01 06:00", "01 07:00"]),
    # A 09:00-17:00 rule keeps its wall-clock hours on both sides of the change (UTC shifts by 1 h).
    ("America/New_York", "2026-03-06", FRIDAY, "09:00", "11:00", 60, ["06 14:00", "06 15:00"]),
    ("America/New_York", "2026-03-09", MONDAY, "09:00", "11:00", 60, ["09 13:00", "09 14:00"]),
    # A rule that starts inside the spring-forward gap starts at the first real instant after it.
    ("America/New_York", "2026-03-08", SUNDAY, "02:30", "05:00", 60, ["08 07:30"]),
    # Southern hemisphere: Sydney falls back 03:00 -> 02:00 on 2026-04-05.
    ("Australia/Sydney", "2026-04-05", SUNDAY, "02:00", "03:00", 60, ["04 15:00", "04 16:00"]),
    # Lord Howe Island changes by 30 minutes (02:00 -> 01:30).
    (
        "Australia/Lord_Howe",
        "2026-04-05",
        SUNDAY,
        "01:00",
        "03:00",
        30,
        ["04 14:00", "04 14:30", "04 15:00", "04 15:30", "04 16:00"],
    ),
    # London springs forward 01:00 -> 02:00 on 2026-03-29.
    ("Europe/London", "2026-03-29", SUNDAY, "00:00", "03:00", 60, ["29 00:00", "29 01:00"]),
    # A zone without DST and a half-hour offset (+05:30).
    ("Asia/Kolkata", "2026-03-09", MONDAY, "09:00", "10:00", 30, ["09 03:30", "09 04:00"]),
    # Hours up to 24:00 end at the next day's midnight, so the last hour of the day is offered.
    ("UTC", "2026-03-09", MONDAY, "22:00", "24:00", 60, ["09 22:00", "09 23:00"]),
    ("Asia/Kolkata", "2026-03-09", MONDAY, "23:00", "24:00", 30, ["09 17:30", "09 18:00"]),
    # Santiago falls back at midnight (24:00 -> 23:00) on Saturday 2026-04-04: 22:00-24:00 is 3 hours.
    ("America/Santiago", "2026-04-04", SATURDAY, "22:00", "24:00", 60, ["05 01:00", "05 02:00", "05 03:00"]),
    # ...and springs forward at midnight (24:00 -> 01:00) on Saturday 2026-09-05: the end still holds.
    ("America/Santiago", "2026-09-05", SATURDAY, "22:00", "24:00", 60, ["06 02:00", "06 03:00"]),
]


@pytest.mark.parametrize(("zone", "day", "weekday", "start", "end", "minutes", "expected"), DST_TABLE)
def test_weekly_hours_expand_correctly_across_dst_changes(
    zone: str, day: str, weekday: int, start: str, end: str, minutes: int, expected: list[str]
) -> None:
    assert date.fromisoformat(day).isoweekday() == weekday
    assert starts(weekly(zone, weekday, start, end), day, minutes) == expected


@pytest.mark.parametrize(("day", "hours"), [("2026-03-29", 23), ("2026-03-22", 24), ("2026-10-25", 25)])
def test_a_whole_day_until_24_00_has_as_many_hours_as_the_day(day: str, hours: int) -> None:
    assert len(starts(weekly("Europe/London", SUNDAY, "00:00", "24:00"), day)) == hours


def test_hours_until_24_00_run_on_into_the_next_days_hours_from_00_00() -> None:
    zone = ZoneInfo("Europe/Berlin")
    schedule = Schedule(
        zone,
        (WeeklyHours(MONDAY, time(23), END_OF_DAY), WeeklyHours(2, time(0), time(1))),
        booking_window=timedelta(days=3650),
    )
    start = datetime.combine(date(2026, 3, 9), time(0), tzinfo=zone)
    slots = generate_slots(
        schedule, length=timedelta(minutes=90), start=start, end=start + timedelta(days=2), now=LONG_AGO
    )
    assert [(s.astimezone(zone).strftime("%a %H:%M"), e.astimezone(zone).strftime("%H:%M")) for s, e in slots] == [
        ("Mon 23:00", "00:30")
    ]
    overridden = Schedule(zone, overrides=(DateOverride(date(2026, 3, 9), time(23), END_OF_DAY),))
    assert open_hours(overridden, date(2026, 3, 9)) == [(utc("2026-03-09T22:00"), utc("2026-03-09T23:00"))]


def test_slots_shown_in_another_zone_follow_both_zones_dst() -> None:
    # New York changes on 2026-03-08, London on 2026-03-29: between them the gap is 4 h, not 5.
    schedule = weekly("America/New_York", MONDAY, "09:00", "10:00")
    london = ZoneInfo("Europe/London")
    local_hours = []
    for day in ("2026-03-02", "2026-03-09", "2026-03-30"):
        start = datetime.combine(date.fromisoformat(day), time(0), tzinfo=UTC)
        ((slot_start, _),) = generate_slots(
            schedule, length=timedelta(hours=1), start=start, end=start + timedelta(days=1), now=LONG_AGO
        )
        local_hours.append(slot_start.astimezone(london).strftime("%H:%M %Z"))
    assert local_hours == ["14:00 GMT", "13:00 GMT", "14:00 BST"]


def test_a_day_off_replaces_the_weekly_hours_and_extra_hours_add_to_them() -> None:
    base = weekly("Europe/Berlin", MONDAY, "09:00", "11:00")
    day_off = Schedule(base.zone, base.weekly, (DateOverride(date(2026, 3, 9)),), booking_window=base.booking_window)
    assert starts(day_off, "2026-03-09") == []
    assert starts(day_off, "2026-03-16") == ["16 08:00", "16 09:00"]
    extra = Schedule(
        base.zone,
        base.weekly,
        (DateOverride(date(2026, 3, 9), time(13), time(14)), DateOverride(date(2026, 3, 10), time(7), time(8))),
        booking_window=base.booking_window,
    )
    assert starts(extra, "2026-03-09") == ["09 08:00", "09 09:00", "09 12:00"]
    assert starts(extra, "2026-03-10") == ["10 06:00"]  # a Tuesday: no weekly hours, only the extra ones
    replaced = Schedule(
        base.zone,
        base.weekly,
        (DateOverride(date(2026, 3, 9)), DateOverride(date(2026, 3, 9), time(15), time(16))),
        booking_window=base.booking_window,
    )
    assert starts(replaced, "2026-03-09") == ["09 14:00"]


def test_overlapping_hours_merge_before_slotting() -> None:
    zone = ZoneInfo("UTC")
    schedule = Schedule(
        zone,
        (WeeklyHours(MONDAY, time(9), time(10, 30)), WeeklyHours(MONDAY, time(10), time(11))),
        booking_window=timedelta(days=3650),
    )
    assert starts(schedule, "2026-03-09") == ["09 09:00", "09 10:00"]
    assert open_hours(schedule, date(2026, 3, 9)) == [(utc("2026-03-09T09:00"), utc("2026-03-09T11:00"))]


def test_minimum_notice_and_booking_window_bound_the_slots() -> None:
    schedule = Schedule(
        ZoneInfo("UTC"),
        tuple(WeeklyHours(day, time(9), time(12)) for day in range(1, 8)),
        min_notice=timedelta(hours=2),
        booking_window=timedelta(days=1),
    )
    now = utc("2026-03-09T07:30")
    start, end = utc("2026-03-09T00:00"), utc("2026-03-12T00:00")
    slots = generate_slots(schedule, length=timedelta(hours=1), start=start, end=end, now=now)
    # 09:30 is the earliest start; 10:00 and 11:00 today, then tomorrow up to 07:30 + 1 day: none.
    assert [s.isoformat() for s, _ in slots] == ["2026-03-09T10:00:00+00:00", "2026-03-09T11:00:00+00:00"]
    wide = Schedule(schedule.zone, schedule.weekly, min_notice=timedelta(0), booking_window=timedelta(days=2))
    slots = generate_slots(wide, length=timedelta(hours=1), start=start, end=end, now=now)
    assert len(slots) == 6  # 09:00-11:00 on the 9th and 10th; the 11th opens after now + 2 days
    assert slots[-1][0] == utc("2026-03-10T11:00")


def test_busy_intervals_remove_the_slots_they_overlap() -> None:
    schedule = weekly("UTC", MONDAY, "09:00", "13:00")
    busy = [(utc("2026-03-09T10:30"), utc("2026-03-09T11:15"))]
    start = utc("2026-03-09T00:00")
    slots = generate_slots(
        schedule, length=timedelta(hours=1), start=start, end=start + timedelta(days=1), now=LONG_AGO, busy=busy
    )
    assert [s.strftime("%H:%M") for s, _ in slots] == ["09:00", "12:00"]


def test_the_range_is_half_open_and_a_slot_must_fit_its_block() -> None:
    schedule = weekly("UTC", MONDAY, "09:00", "10:45")
    start = utc("2026-03-09T09:00")
    slots = generate_slots(
        schedule, length=timedelta(minutes=30), start=start, end=utc("2026-03-09T10:00"), now=LONG_AGO
    )
    assert [s.strftime("%H:%M") for s, _ in slots] == ["09:00", "09:30"]
    assert (
        generate_slots(schedule, length=timedelta(hours=2), start=start, end=start + timedelta(days=1), now=LONG_AGO)
        == []
    )
    with pytest.raises(ValueError, match="positive"):
        generate_slots(schedule, length=timedelta(0), start=start, end=start, now=LONG_AGO)
