"""The pure policy: price rounding, refunds by who cancels and when, no-show refunds, the
reschedule edge, and the snapshot taken from settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.bookings.policy import Policy, session_price_minor
from shared.config import load_settings

START = datetime(2030, 3, 10, 12, 0, tzinfo=UTC)
EDGE = START - timedelta(hours=24)
TICK = timedelta(microseconds=1)
POLICY = Policy(
    commission_bps=1500,
    full_refund_cutoff_hours=24,
    late_cancel_refund_percent=30,
    reschedule_cutoff_hours=24,
    hold_minutes=15,
)


@pytest.mark.parametrize(
    ("rate", "minutes", "price"),
    [(150_000, 60, 150_000), (150_000, 30, 75_000), (999, 45, 749), (1, 30, 1), (1, 29, 0), (99_999, 30, 50_000)],
)
def test_the_price_is_rate_times_minutes_over_sixty_rounded_half_up(rate: int, minutes: int, price: int) -> None:
    assert session_price_minor(rate, minutes) == price


@pytest.mark.parametrize(
    ("paid", "by", "now", "refund"),
    [
        (False, "student", EDGE - timedelta(days=3), 0),  # nothing was paid yet
        (False, "mentor", EDGE, 0),
        (True, "student", EDGE - TICK, 10_001),
        (True, "student", EDGE, 10_001),  # the edge instant still gets the full refund
        (True, "student", EDGE + TICK, 3000),  # 30 % of 10 001, rounded down
        (True, "student", START - TICK, 3000),  # the last instant a student may cancel
        (True, "mentor", START - timedelta(minutes=5), 10_001),
        (True, "admin", START + timedelta(hours=2), 10_001),
    ],
)
def test_cancellation_refunds(paid: bool, by: str, now: datetime, refund: int) -> None:
    assert POLICY.cancellation_refund(10_001, paid=paid, cancelled_by=by, start=START, now=now) == refund


def test_a_student_cancelling_a_time_somebody_else_set_is_refunded_in_full() -> None:
    late = START - timedelta(hours=3)
    assert POLICY.cancellation_refund(10_001, paid=True, cancelled_by="student", start=START, now=late) == 3000
    moved = POLICY.cancellation_refund(
        10_001, paid=True, cancelled_by="student", start=START, now=late, time_set_by_other_party=True
    )
    assert moved == 10_001


def test_no_show_refunds_and_the_reschedule_edge() -> None:
    assert Policy.no_show_refund(10_001, "mentor") == 10_001
    assert Policy.no_show_refund(10_001, "student") == 0
    assert POLICY.may_reschedule(START, EDGE) and POLICY.may_reschedule(START, EDGE - TICK)
    assert not POLICY.may_reschedule(START, EDGE + TICK)
    assert POLICY.hold_expires_at(START) == START + timedelta(minutes=15)


def test_the_snapshot_comes_from_settings() -> None:
    base = {
        "DATABASE_URL": "postgresql://h/db",
        "REDIS_URL": "redis://h",
        "AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
    }
    assert Policy.from_settings(load_settings(base)).snapshot() == {
        "commission_bps": 1500,
        "full_refund_cutoff_hours": 24,
        "late_cancel_refund_percent": 0,
        "reschedule_cutoff_hours": 24,
        "hold_minutes": 15,
    }
    custom = load_settings({**base, "PLATFORM_COMMISSION_BPS": "2000", "BOOKING_LATE_CANCEL_REFUND_PERCENT": "50"})
    assert Policy.from_settings(custom).commission_bps == 2000
    assert Policy.from_settings(custom).late_cancel_refund_percent == 50
