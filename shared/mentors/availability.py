"""Slot generation: a mentor's weekly hours and date overrides, expanded into bookable instants.

Pure functions, no I/O. Hours are wall-clock times in the mentor's IANA zone; each day's hours are
turned into UTC instants with `zoneinfo` for that date, so a 09:00-17:00 rule stays 09:00-17:00
local on both sides of a daylight-saving change. Slots are then stepped in real (UTC) time, so a
day that loses an hour offers one hour fewer and a day that gains one offers one more.

Wall times that do not exist (inside a spring-forward gap) resolve with the offset in force before
the change (PEP 495, fold=0), i.e. 02:30 on a day that jumps from 02:00 to 03:00 means 03:30; times
that happen twice (fall-back) mean the first occurrence.

Hours may end at 24:00, the midnight that ends their day: as `time` stops at 23:59:59.999999, an
end of 00:00 (`END_OF_DAY`) stands for it, since no hours can end at the midnight that starts their
day. It is the next date's 00:00 in the mentor's zone, so such a day has as many hours as it really
has (23 or 25 on a DST change), and hours up to 24:00 run on into the next day's hours from 00:00.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

Interval = tuple[datetime, datetime]

END_OF_DAY = time(0)  # as the end of hours: 24:00


@dataclass(frozen=True, slots=True)
class WeeklyHours:
    weekday: int  # ISO: 1 = Monday … 7 = Sunday
    start: time
    end: time  # END_OF_DAY: 24:00


@dataclass(frozen=True, slots=True)
class DateOverride:
    """A day off when `start`/`end` are None (it replaces the weekly hours), else extra hours (an
    `end` of END_OF_DAY is 24:00)."""

    on_date: date
    start: time | None = None
    end: time | None = None


@dataclass(frozen=True, slots=True)
class Schedule:
    zone: ZoneInfo
    weekly: Sequence[WeeklyHours] = ()
    overrides: Sequence[DateOverride] = ()
    min_notice: timedelta = timedelta(hours=2)
    booking_window: timedelta = timedelta(days=60)


def _instant(day: date, wall: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, wall, tzinfo=zone).astimezone(UTC)


def _end_instant(day: date, wall: time, zone: ZoneInfo) -> datetime:
    return _instant(day + timedelta(days=1), wall, zone) if wall == END_OF_DAY else _instant(day, wall, zone)


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def open_hours(schedule: Schedule, day: date) -> list[Interval]:
    """The mentor's open hours on local date `day`, as merged UTC intervals."""
    overrides = [o for o in schedule.overrides if o.on_date == day]
    day_off = any(o.start is None for o in overrides)
    walls = [] if day_off else [(w.start, w.end) for w in schedule.weekly if w.weekday == day.isoweekday()]
    walls += [(o.start, o.end) for o in overrides if o.start is not None and o.end is not None]
    intervals = [(_instant(day, start, schedule.zone), _end_instant(day, end, schedule.zone)) for start, end in walls]
    return _merge((start, end) for start, end in intervals if start < end)


def _overlaps(start: datetime, end: datetime, busy: Sequence[Interval]) -> bool:
    return any(b_start < end and start < b_end for b_start, b_end in busy)


def generate_slots(
    schedule: Schedule,
    *,
    length: timedelta,
    start: datetime,
    end: datetime,
    now: datetime,
    busy: Sequence[Interval] = (),
) -> list[Interval]:
    """Bookable slots of `length` starting in [start, end), as UTC intervals in time order.

    A slot lies wholly inside open hours, starts at least `min_notice` after `now` and no later
    than `booking_window` after it, and overlaps nothing in `busy` (taken or held bookings).
    Slots start at the beginning of each block of open hours and follow each other back to back.
    """
    if length <= timedelta(0):
        raise ValueError("length must be positive")
    earliest = max(start, now + schedule.min_notice)
    latest = min(end, now + schedule.booking_window + timedelta(microseconds=1))
    if earliest >= latest:
        return []
    # Local dates that can hold a slot starting in range: one day of slack on each side covers
    # every UTC offset (-12h … +14h).
    first = earliest.astimezone(schedule.zone).date() - timedelta(days=1)
    last = latest.astimezone(schedule.zone).date() + timedelta(days=1)
    blocks = _merge(
        interval
        for offset in range((last - first).days + 1)
        for interval in open_hours(schedule, first + timedelta(offset))
    )
    slots: list[Interval] = []
    for block_start, block_end in blocks:
        slot_start = block_start
        while slot_start + length <= block_end:
            slot_end = slot_start + length
            if earliest <= slot_start < latest and not _overlaps(slot_start, slot_end, busy):
                slots.append((slot_start, slot_end))
            slot_start = slot_end
    return slots
