"""Timer-trigger schedules as the Functions host reads them: NCRONTAB and TimeSpan.

Mirrors `TimerSchedule.Create` / `CronSchedule` in azure-webjobs-sdk-extensions:

- a `%Setting%` token is replaced from the app settings (here `os.environ`);
- 6 fields means seconds first; exactly 5 fields means classic cron (minute first);
- NCrontab ANDs day-of-month and day-of-week (`day_or=False` in croniter);
- anything else must parse as a .NET TimeSpan (`hh:mm:ss`, `d.hh:mm:ss`, ...) and means a fixed interval;
- wall-clock fields are read in the zone of `WEBSITE_TIME_ZONE` or `TZ` (IANA names), default UTC.

Daylight saving follows `CronSchedule.GetNextOccurrence`: a wall time that does not exist (spring
forward) runs at the same wall time on the pre-transition offset, i.e. shifted forward by the gap; in the
repeated hour (fall back) a point-in-time schedule runs once, on the first pass, while an interval
schedule (`*`, `/` or `-` in the seconds, minutes or hours field) runs on both passes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

_SETTING = re.compile(r"%([^%]+)%")
# NCrontab accepts numbers, lists, ranges, steps and (in the month and weekday fields) names; it has no
# `L`, `W`, `#`, `?`, `H` or `@daily` macros, which croniter would otherwise accept.
_FIELD = re.compile(r"^[0-9*/,\-]+$")
_NAMED_FIELD = re.compile(r"^[0-9A-Za-z*/,\-]+$")
# .NET TimeSpan.Parse forms: `d`, `[d.]hh:mm[:ss[.fffffff]]` and `d:hh:mm:ss[.fffffff]`.
_TIMESPAN = re.compile(
    r"^(?P<neg>-)?(?:"
    r"(?P<days_only>\d+)"
    r"|(?:(?P<days>\d+)\.)?(?P<h>\d{1,2}):(?P<m>\d{1,2})(?::(?P<s>\d{1,2})(?:\.(?P<frac>\d{1,7}))?)?"
    r"|(?P<days4>\d+):(?P<h4>\d{1,2}):(?P<m4>\d{1,2}):(?P<s4>\d{1,2})(?:\.(?P<frac4>\d{1,7}))?"
    r")$"
)
# Beyond any real zone's DST shift (Antarctica/Troll moves by 2 h).
_MAX_DST_SHIFT = timedelta(hours=3)


class ScheduleError(ValueError):
    """A schedule that the host would refuse at startup."""

    def __init__(self, function_name: str, expression: str, reason: str) -> None:
        super().__init__(
            f"The schedule expression '{expression}' of function '{function_name}' was not recognized as a valid "
            f"cron expression or timespan string: {reason}"
        )
        self.function_name = function_name
        self.expression = expression


class Schedule(Protocol):
    """When a timer falls due."""

    @property
    def expression(self) -> str:
        """The resolved expression (after `%Setting%` substitution)."""
        ...

    @property
    def tz(self) -> tzinfo:
        """The zone whose wall clock the schedule is read in; times returned are in this zone."""
        ...

    def next_after(self, dt: datetime) -> datetime:
        """The first occurrence strictly after the aware datetime `dt`, in `self.tz`."""
        ...

    def runs_more_than_once_a_minute(self, now: datetime) -> bool:
        """True if the host would switch schedule monitoring off for it (`ShouldDisableScheduleMonitor`)."""
        ...


@dataclass(frozen=True)
class IntervalSchedule:
    """A TimeSpan schedule: every `interval`, counted from the previous occurrence."""

    expression: str
    interval: timedelta
    tz: tzinfo = UTC

    def next_after(self, dt: datetime) -> datetime:
        """`dt + interval`, in the schedule's zone."""
        return (_require_aware(dt) + self.interval).astimezone(self.tz)

    def runs_more_than_once_a_minute(self, now: datetime) -> bool:  # noqa: ARG002 - same signature as cron
        """True for intervals under one minute."""
        return self.interval < timedelta(minutes=1)


@dataclass(frozen=True)
class CronSchedule:
    """An NCRONTAB schedule (5 or 6 fields) read in a time zone."""

    expression: str
    tz: tzinfo = UTC
    _has_seconds: bool = field(init=False, repr=False)
    _is_interval: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        fields = self.expression.split()
        object.__setattr__(self, "_has_seconds", len(fields) == 6)
        # Same test as CronSchedule's constructor: any `*`, `/` or `-` in the (seconds,) minutes or hours field.
        checked = fields[:3] if len(fields) == 6 else fields[:2]
        object.__setattr__(self, "_is_interval", any(c in part for part in checked for c in "*/-"))

    def next_after(self, dt: datetime) -> datetime:
        """The first occurrence strictly after `dt`, honouring DST like the host (see the module docstring)."""
        # Compare in UTC: aware datetimes sharing one tzinfo compare by wall time and ignore `fold`.
        now = _require_aware(dt).astimezone(UTC)
        local = now.astimezone(self.tz)
        best: datetime | None = None
        for wall in self._walls_after(local.replace(tzinfo=None, fold=0)):
            later = [instant for instant in self._instants(wall) if instant > now]
            if later:
                best = min(later)
                break
        assert best is not None
        if self._is_interval:
            repeated = self._second_pass_after(now)
            if repeated is not None and repeated < best:
                best = repeated
        return best.astimezone(self.tz)

    def _second_pass_after(self, now: datetime) -> datetime | None:
        """The first occurrence in the repeated hour of a fall-back due within `_MAX_DST_SHIFT` of `now`.

        Walking wall times forward from `now` cannot see these: their wall times are behind the clock's.
        """
        before, after = _offset(now.astimezone(self.tz)), _offset((now + _MAX_DST_SHIFT).astimezone(self.tz))
        if before <= after:
            return None
        low, high = now, now + _MAX_DST_SHIFT
        while high - low > timedelta(seconds=1):
            middle = low + (high - low) / 2
            low, high = (middle, high) if _offset(middle.astimezone(self.tz)) == before else (low, middle)
        repeat_start = (high + after).replace(tzinfo=None)
        repeat_end = (high + before).replace(tzinfo=None)
        wall = next(self._walls_after(repeat_start - timedelta(seconds=1)))
        return wall.replace(tzinfo=self.tz, fold=1).astimezone(UTC) if wall < repeat_end else None

    def runs_more_than_once_a_minute(self, now: datetime) -> bool:
        """`ShouldDisableScheduleMonitor`: only `X * * * * *` forms can fire more than once a minute."""
        fields = self.expression.split()
        if not self._has_seconds or any(part != "*" for part in fields[1:]):
            return False
        first = self.next_after(now)
        # The host counts occurrences in (now, now + 1 min); its `now` is never exactly on a second, so
        # `*/30` always counts two. Including the end keeps that answer when a virtual clock sits on :00.
        return self.next_after(first) <= now + timedelta(minutes=1)

    def _walls_after(self, start: datetime) -> Iterator[datetime]:
        it = croniter(self.expression, start, second_at_beginning=self._has_seconds, day_or=False)
        while True:
            yield it.get_next(datetime)

    def _instants(self, wall: datetime) -> list[datetime]:
        first = wall.replace(tzinfo=self.tz, fold=0)
        second = wall.replace(tzinfo=self.tz, fold=1)
        ambiguous = _offset(first) > _offset(second)
        # In a fall-back hour a point-in-time schedule only runs on the first pass. A nonexistent wall time
        # (spring forward) gets fold=0's pre-transition offset, i.e. moves forward by the gap, as in .NET.
        chosen = [first, second] if ambiguous and self._is_interval else [first]
        return [instant.astimezone(UTC) for instant in chosen]


def resolve_settings(text: str, *, function_name: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace every `%Name%` with the app setting `Name`, as the host's name resolver does."""
    env = os.environ if environ is None else environ

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ScheduleError(function_name, text, f"'%{name}%' does not resolve to a value")
        return env[name]

    return _SETTING.sub(lookup, text)


def schedule_time_zone(environ: Mapping[str, str] | None = None) -> tzinfo:
    """The host's local zone: `WEBSITE_TIME_ZONE`, else `TZ` (IANA names), else UTC."""
    env = os.environ if environ is None else environ
    name = env.get("WEBSITE_TIME_ZONE") or env.get("TZ") or ""
    name = name.strip().removeprefix(":")
    if not name or name.upper() in {"UTC", "UTC0", "ETC/UTC"}:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"Unknown time zone '{name}' (WEBSITE_TIME_ZONE/TZ must be an IANA name)") from exc


def parse_schedule(
    text: str,
    *,
    function_name: str = "<unknown>",
    environ: Mapping[str, str] | None = None,
    tz: tzinfo | None = None,
) -> Schedule:
    """Parse a timer trigger's `schedule` as the host does; raise `ScheduleError` if it would refuse it.

    `tz` defaults to `schedule_time_zone(environ)`.
    """
    expression = resolve_settings(text, function_name=function_name, environ=environ).strip()
    zone = tz if tz is not None else schedule_time_zone(environ)
    fields = expression.split()
    if len(fields) in (5, 6):
        _check_cron(fields, function_name=function_name, expression=expression)
        return CronSchedule(" ".join(fields), zone)
    interval = _parse_timespan(expression)
    if interval is None:
        raise ScheduleError(function_name, expression, "expected 5 or 6 NCRONTAB fields or a TimeSpan like 01:00:00")
    if interval <= timedelta(0):
        raise ScheduleError(function_name, expression, "a TimeSpan schedule must be positive")
    return IntervalSchedule(expression, interval, zone)


def _check_cron(fields: list[str], *, function_name: str, expression: str) -> None:
    named = {len(fields) - 2, len(fields) - 1}  # month and day-of-week accept names
    for index, part in enumerate(fields):
        pattern = _NAMED_FIELD if index in named else _FIELD
        if not pattern.match(part):
            raise ScheduleError(function_name, expression, f"field {index + 1} '{part}' is not NCRONTAB syntax")
    six = len(fields) == 6
    try:
        croniter(" ".join(fields), datetime(2026, 1, 1), second_at_beginning=six, day_or=False).get_next(datetime)
    except (ValueError, KeyError, TypeError) as exc:  # croniter's errors derive from ValueError
        raise ScheduleError(function_name, expression, str(exc)) from exc


def _parse_timespan(text: str) -> timedelta | None:
    match = _TIMESPAN.match(text)
    if match is None:
        return None
    if match["days_only"] is not None:
        return timedelta(days=int(match["days_only"])) * (-1 if match["neg"] else 1)
    suffix = "4" if match["days4"] is not None else ""
    days, hours, minutes, seconds, frac = (match[g + suffix] for g in ("days", "h", "m", "s", "frac"))
    if int(hours) > 23 or int(minutes) > 59 or int(seconds or 0) > 59:
        return None
    fraction = int((frac or "0").ljust(7, "0")) / 10**7
    value = timedelta(days=int(days or 0), hours=int(hours), minutes=int(minutes), seconds=int(seconds or 0) + fraction)
    return -value if match["neg"] else value


def _offset(dt: datetime) -> timedelta:
    offset = dt.utcoffset()
    assert offset is not None
    return offset


def _require_aware(dt: datetime) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("schedules work on timezone-aware datetimes")
    return dt
