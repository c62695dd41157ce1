"""NCRONTAB and TimeSpan schedules: vectors for the host's semantics (AND of day fields, DST, settings)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from devhost.ncrontab import ScheduleError, parse_schedule, schedule_time_zone

NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")


def occurrences(expression: str, start: datetime, count: int, **kwargs: object) -> list[datetime]:
    schedule = parse_schedule(expression, environ={}, **kwargs)  # type: ignore[arg-type]
    result = []
    current = start
    for _ in range(count):
        current = schedule.next_after(current)
        result.append(current)
    return result


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_day_of_month_and_day_of_week_are_anded() -> None:
    # NCrontab: the 1st of a month that is also a Monday (cron's usual OR would give Jan 1 and every Monday).
    assert occurrences("0 30 9 1 * Mon", utc(2026, 1, 1), 2) == [utc(2026, 6, 1, 9, 30), utc(2027, 2, 1, 9, 30)]


def test_six_fields_put_seconds_first() -> None:
    assert occurrences("*/30 * * * * *", utc(2026, 1, 1, 10, 0, 5), 3) == [
        utc(2026, 1, 1, 10, 0, 30),
        utc(2026, 1, 1, 10, 1, 0),
        utc(2026, 1, 1, 10, 1, 30),
    ]
    assert occurrences("15 0 * * * *", utc(2026, 1, 1, 10, 0, 15), 1) == [utc(2026, 1, 1, 11, 0, 15)]


def test_five_fields_are_classic_cron_with_minutes_first() -> None:
    assert occurrences("*/15 9 * * *", utc(2026, 1, 1, 9, 14, 59), 3) == [
        utc(2026, 1, 1, 9, 15),
        utc(2026, 1, 1, 9, 30),
        utc(2026, 1, 1, 9, 45),
    ]


def test_next_is_strictly_after_even_within_the_same_second() -> None:
    assert occurrences("0 30 9 * * *", utc(2026, 1, 1, 9, 30, 0) + timedelta(microseconds=1), 1) == [
        utc(2026, 1, 2, 9, 30)
    ]
    assert occurrences("0 30 9 * * *", utc(2026, 1, 1, 9, 30), 1) == [utc(2026, 1, 2, 9, 30)]


def test_timespan_schedules_are_fixed_intervals() -> None:
    start = utc(2026, 1, 1, 10, 7, 3)
    assert occurrences("01:00:00", start, 2) == [start + timedelta(hours=1), start + timedelta(hours=2)]
    assert occurrences("00:00:30", start, 1) == [start + timedelta(seconds=30)]
    assert occurrences("1.00:00:00", start, 1) == [start + timedelta(days=1)]
    assert occurrences("00:05", start, 1) == [start + timedelta(minutes=5)]


def test_settings_are_resolved_from_the_environment() -> None:
    schedule = parse_schedule("%REPORT_SCHEDULE%", environ={"REPORT_SCHEDULE": "0 0 6 * * *"}, function_name="f")
    assert schedule.expression == "0 0 6 * * *"
    assert schedule.next_after(utc(2026, 1, 1, 7)) == utc(2026, 1, 2, 6)
    with pytest.raises(ScheduleError) as info:
        parse_schedule("%MISSING%", environ={}, function_name="report")
    assert info.value.function_name == "report"
    assert "'%MISSING%' does not resolve to a value" in str(info.value)


@pytest.mark.parametrize(
    "expression",
    [
        "0 0 * * *  *  *",  # 7 fields
        "61 * * * * *",
        "0 0 25 * * *",
        "0 0 0 L * *",  # croniter extension, not NCrontab
        "0 0 0 * * 1#2",
        "@daily",
        "every day",
        "24:00:00",
        "00:00:00",
        "",
    ],
)
def test_invalid_expressions_name_the_function_and_expression(expression: str) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_schedule(expression, environ={}, function_name="nightly")
    assert info.value.function_name == "nightly"
    assert "'nightly'" in str(info.value)
    assert f"'{expression.strip()}'" in str(info.value)


def test_time_zone_comes_from_website_time_zone_then_tz() -> None:
    assert schedule_time_zone({}) is UTC
    assert schedule_time_zone({"TZ": "Europe/London"}) == LONDON
    assert schedule_time_zone({"WEBSITE_TIME_ZONE": "America/New_York", "TZ": "Europe/London"}) == NEW_YORK
    with pytest.raises(ValueError, match="IANA"):
        schedule_time_zone({"WEBSITE_TIME_ZONE": "Eastern Standard Time"})


def test_wall_clock_schedule_keeps_local_time_across_spring_forward() -> None:
    # 09:00 New York every day: 14:00Z in winter, 13:00Z after the 2026-03-08 change.
    times = occurrences("0 0 9 * * *", utc(2026, 3, 7, 0), 2, tz=NEW_YORK)
    assert [t.astimezone(UTC) for t in times] == [utc(2026, 3, 7, 14), utc(2026, 3, 8, 13)]
    assert all(t.hour == 9 for t in times)


def test_nonexistent_local_time_runs_an_hour_later_on_that_day() -> None:
    # 02:30 does not exist on 2026-03-08 in New York: like .NET, it runs at 03:30 EDT (07:30Z).
    times = occurrences("0 30 2 * * *", datetime(2026, 3, 7, 12, tzinfo=NEW_YORK), 2, tz=NEW_YORK)
    assert [t.astimezone(UTC) for t in times] == [utc(2026, 3, 8, 7, 30), utc(2026, 3, 9, 6, 30)]


def test_interval_schedule_runs_through_the_repeated_hour_on_fall_back() -> None:
    # Europe/London falls back at 02:00 BST = 01:00 GMT on 2026-10-25; 01:00-01:59 happens twice.
    times = occurrences("0 */30 * * * *", datetime(2026, 10, 25, 0, 40, tzinfo=LONDON), 5, tz=LONDON)
    assert [t.astimezone(UTC) for t in times] == [
        utc(2026, 10, 25, 0, 0),  # 01:00 BST
        utc(2026, 10, 25, 0, 30),  # 01:30 BST
        utc(2026, 10, 25, 1, 0),  # 01:00 GMT
        utc(2026, 10, 25, 1, 30),  # 01:30 GMT
        utc(2026, 10, 25, 2, 0),  # 02:00 GMT
    ]


def test_point_in_time_schedule_runs_once_in_the_repeated_hour() -> None:
    times = occurrences("0 30 1 * * *", datetime(2026, 10, 24, 12, tzinfo=LONDON), 2, tz=LONDON)
    assert [t.astimezone(UTC) for t in times] == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    # Starting inside the second pass (01:10 GMT) skips the repeated 01:30.
    second_pass = datetime(2026, 10, 25, 1, 10, tzinfo=UTC).astimezone(LONDON)
    assert occurrences("0 30 1 * * *", second_pass, 1, tz=LONDON)[0].astimezone(UTC) == utc(2026, 10, 26, 1, 30)


def test_results_are_in_the_schedule_zone() -> None:
    (first,) = occurrences("0 0 9 * * *", utc(2026, 7, 1), 1, tz=NEW_YORK)
    assert first.tzinfo == NEW_YORK
    assert first.utcoffset() == timedelta(hours=-4)


@pytest.mark.parametrize(
    ("expression", "frequent"),
    [("*/5 * * * * *", True), ("10,20 * * * * *", True), ("0 * * * * *", False), ("* */5 * * * *", False)],
)
def test_sub_minute_detection_matches_the_host(expression: str, frequent: bool) -> None:
    assert parse_schedule(expression, environ={}).runs_more_than_once_a_minute(utc(2026, 1, 1)) is frequent
    assert parse_schedule("00:00:30", environ={}).runs_more_than_once_a_minute(utc(2026, 1, 1))
    assert not parse_schedule("00:01:00", environ={}).runs_more_than_once_a_minute(utc(2026, 1, 1))


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_schedule("0 * * * * *", environ={}).next_after(datetime(2026, 1, 1))
