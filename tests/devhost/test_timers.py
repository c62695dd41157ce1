"""TimerScheduler on a VirtualClock: occurrences, TimerInfo shape, past-due catch-up, runOnStartup, failures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import azure.functions as func
import pytest
from azure.storage.blob.aio import BlobServiceClient

from devhost.clock import VirtualClock
from devhost.hoststorage import HOST_CONTAINER
from devhost.invoker import Invoker
from devhost.loader import FunctionSpec, LoadedApp, load_app
from devhost.ncrontab import ScheduleError
from devhost.timer_status import BlobScheduleStatusStore, MemoryScheduleStatusStore, ScheduleStatus
from devhost.timers import TimerScheduler

APP_DIR = Path(__file__).parent / "apps" / "timers_app"
DEFAULT = "0001-01-01T00:00:00+00:00"
START = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)  # a Thursday, at the daily job's time


@pytest.fixture(scope="module")
def app() -> LoadedApp:
    return load_app(APP_DIR)


@pytest.fixture
def calls(app: LoadedApp, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, func.TimerRequest]]]:
    monkeypatch.delenv("WEBSITE_TIME_ZONE", raising=False)
    monkeypatch.delenv("TZ", raising=False)
    recorded: list[tuple[str, func.TimerRequest]] = app.get("daily").user_function.__globals__["CALLS"]
    recorded.clear()
    yield recorded
    recorded.clear()


@pytest.fixture
async def invoker() -> AsyncIterator[Invoker]:
    invoker = Invoker()
    yield invoker
    await invoker.close()


async def settle(scheduler: TimerScheduler) -> None:
    async with asyncio.timeout(5):
        await scheduler.quiesce()


async def advance(clock: VirtualClock, scheduler: TimerScheduler, delta: timedelta, steps: int = 1) -> None:
    for _ in range(steps):
        clock.advance(delta)
        await settle(scheduler)


def statuses(calls: list[tuple[str, func.TimerRequest]], name: str) -> list[tuple[bool, dict[str, Any]]]:
    return [(timer.past_due, timer.schedule_status) for called, timer in calls if called == name]


async def test_daily_job_fires_once_per_day_with_host_schedule_status(
    app: LoadedApp, invoker: Invoker, calls: list[tuple[str, func.TimerRequest]]
) -> None:
    clock = VirtualClock(START)
    store = MemoryScheduleStatusStore()
    scheduler = TimerScheduler([app.get("daily")], invoker, clock, store)
    await scheduler.start()
    try:
        await settle(scheduler)
        assert calls == []  # 09:00 itself is not "after" now
        await advance(clock, scheduler, timedelta(hours=12), steps=6)  # three days
    finally:
        await scheduler.stop()

    assert statuses(calls, "daily") == [
        (False, {"Last": DEFAULT, "Next": "2026-01-02T09:00:00+00:00", "LastUpdated": DEFAULT}),
        (
            False,
            {
                "Last": "2026-01-02T09:00:00+00:00",
                "Next": "2026-01-03T09:00:00+00:00",
                "LastUpdated": "2026-01-02T09:00:00+00:00",
            },
        ),
        (
            False,
            {
                "Last": "2026-01-03T09:00:00+00:00",
                "Next": "2026-01-04T09:00:00+00:00",
                "LastUpdated": "2026-01-03T09:00:00+00:00",
            },
        ),
    ]
    assert calls[0][1].schedule == {"AdjustForDST": True}
    stored = json.loads(store.documents["Host.Functions.daily"])
    assert stored == {
        "Last": "2026-01-04T09:00:00+00:00",
        "Next": "2026-01-05T09:00:00+00:00",
        "LastUpdated": "2026-01-04T09:00:00+00:00",
    }


async def test_a_time_jump_over_many_occurrences_runs_once(
    app: LoadedApp, invoker: Invoker, calls: list[tuple[str, func.TimerRequest]]
) -> None:
    clock = VirtualClock(START)
    store = MemoryScheduleStatusStore()
    scheduler = TimerScheduler([app.get("daily")], invoker, clock, store)
    await scheduler.start()
    try:
        await settle(scheduler)
        await advance(clock, scheduler, timedelta(days=5, hours=3))  # Jan 6 12:00, five occurrences passed
        await advance(clock, scheduler, timedelta(hours=20))  # Jan 7 08:00: nothing due
        await advance(clock, scheduler, timedelta(hours=1))  # Jan 7 09:00
    finally:
        await scheduler.stop()

    assert statuses(calls, "daily") == [
        # Like TimerListener: a late wake-up is not "past due"; Next counts from the wake-up time.
        (False, {"Last": DEFAULT, "Next": "2026-01-02T09:00:00+00:00", "LastUpdated": DEFAULT}),
        (
            False,
            {
                "Last": "2026-01-06T12:00:00+00:00",
                "Next": "2026-01-07T09:00:00+00:00",
                "LastUpdated": "2026-01-06T12:00:00+00:00",
            },
        ),
    ]


async def test_restart_after_downtime_gives_one_past_due_run(
    app: LoadedApp, invoker: Invoker, calls: list[tuple[str, func.TimerRequest]]
) -> None:
    clock = VirtualClock(START)
    store = MemoryScheduleStatusStore()
    first = TimerScheduler([app.get("daily")], invoker, clock, store)
    await first.start()
    await settle(first)
    await first.stop()

    clock.advance(timedelta(days=3, hours=1))  # the host is down over three occurrences
    second = TimerScheduler([app.get("daily")], invoker, clock, store)
    await second.start()
    try:
        await settle(second)
        await advance(clock, second, timedelta(hours=23))  # Jan 5 09:00: back on schedule
    finally:
        await second.stop()

    assert statuses(calls, "daily") == [
        (
            True,
            {  # what the first run recorded on its first start
                "Last": DEFAULT,
                "Next": "2026-01-02T09:00:00+00:00",
                "LastUpdated": "2026-01-01T09:00:00+00:00",
            },
        ),
        (
            False,
            {
                "Last": "2026-01-04T10:00:00+00:00",
                "Next": "2026-01-05T09:00:00+00:00",
                "LastUpdated": "2026-01-04T10:00:00+00:00",
            },
        ),
    ]


async def test_restart_before_the_next_occurrence_is_not_past_due(
    app: LoadedApp, invoker: Invoker, calls: list[tuple[str, func.TimerRequest]]
) -> None:
    clock = VirtualClock(START)
    store = MemoryScheduleStatusStore()
    for _ in range(2):
        scheduler = TimerScheduler([app.get("daily")], invoker, clock, store)
        await scheduler.start()
        await settle(scheduler)
        await scheduler.stop()
        clock.advance(timedelta(hours=6))
    assert calls == []


async def test_run_on_startup_runs_once_at_start(
    app: LoadedApp, invoker: Invoker, calls: list[tuple[str, func.TimerRequest]]
) -> None:
    clock = VirtualClock(START)
    scheduler = TimerScheduler([app.get("on_startup")], invoker, clock, MemoryScheduleStatusStore())
    await scheduler.start()
    try:
        await settle(scheduler)
        await advance(clock, scheduler, timedelta(days=1))
    finally:
        await scheduler.stop()
    assert statuses(calls, "on_startup") == [
        (False, {"Last": DEFAULT, "Next": "2027-01-01T00:00:00+00:00", "LastUpdated": DEFAULT})
    ]


async def test_failing_function_does_not_stop_the_schedule(
    app: LoadedApp, invoker: Invoker, calls: list[tuple[str, func.TimerRequest]], caplog: pytest.LogCaptureFixture
) -> None:
    clock = VirtualClock(START)
    store = MemoryScheduleStatusStore()
    scheduler = TimerScheduler([app.get("failing")], invoker, clock, store)
    await scheduler.start()
    try:
        await settle(scheduler)
        await advance(clock, scheduler, timedelta(minutes=10), steps=3)
    finally:
        await scheduler.stop()
    assert len(statuses(calls, "failing")) == 3
    assert json.loads(store.documents["Host.Functions.failing"])["Next"] == "2026-01-01T09:40:00+00:00"
    assert "RuntimeError: boom" in caplog.text


async def test_sub_minute_schedule_runs_without_monitor(
    app: LoadedApp, invoker: Invoker, calls: list[tuple[str, func.TimerRequest]]
) -> None:
    clock = VirtualClock(START)
    store = MemoryScheduleStatusStore()
    scheduler = TimerScheduler([app.get("frequent"), app.get("hourly_unmonitored")], invoker, clock, store)
    await scheduler.start()
    try:
        await settle(scheduler)
        await advance(clock, scheduler, timedelta(seconds=30), steps=4)
        await advance(clock, scheduler, timedelta(minutes=58))
    finally:
        await scheduler.stop()
    # The host turns useMonitor off for sub-minute schedules; the worker then sees ScheduleStatus {}.
    assert statuses(calls, "frequent") == [(False, {})] * 5
    assert statuses(calls, "hourly_unmonitored") == [(False, {})]
    assert store.documents == {}


async def test_fire_now_invokes_with_stored_status_and_leaves_the_schedule_alone(
    app: LoadedApp, invoker: Invoker, calls: list[tuple[str, func.TimerRequest]]
) -> None:
    clock = VirtualClock(START)
    store = MemoryScheduleStatusStore()
    scheduler = TimerScheduler(app.functions, invoker, clock, store)
    await scheduler.start()
    try:
        await settle(scheduler)
        calls.clear()  # on_startup ran
        before = dict(store.documents)
        await scheduler.fire_now("Daily")  # names are case-insensitive, like the host's
        await scheduler.fire_now("failing")  # a failure is logged, not raised
        with pytest.raises(KeyError):
            await scheduler.fire_now("no_such_timer")
        assert store.documents == before
    finally:
        await scheduler.stop()
    assert [name for name, _ in calls] == ["daily", "failing"]
    assert statuses(calls, "daily") == [
        (
            False,
            {"Last": DEFAULT, "Next": "2026-01-02T09:00:00+00:00", "LastUpdated": "2026-01-01T09:00:00+00:00"},
        )
    ]


async def test_schedule_in_a_time_zone_reports_local_times(
    app: LoadedApp, invoker: Invoker, calls: list[tuple[str, func.TimerRequest]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBSITE_TIME_ZONE", "America/New_York")
    clock = VirtualClock(datetime(2026, 3, 7, 14, 0, tzinfo=UTC))  # 09:00 EST
    scheduler = TimerScheduler([app.get("daily")], invoker, clock, MemoryScheduleStatusStore())
    await scheduler.start()
    try:
        await settle(scheduler)
        await advance(clock, scheduler, timedelta(hours=23))  # 09:00 EDT on Mar 8 is 13:00Z
    finally:
        await scheduler.stop()
    assert statuses(calls, "daily") == [
        (
            False,
            {
                "Last": "0001-01-01T00:00:00-04:56",
                "Next": "2026-03-08T09:00:00-04:00",
                "LastUpdated": "0001-01-01T00:00:00-04:56",
            },
        )
    ]


def test_invalid_schedule_is_refused_at_construction(app: LoadedApp, invoker: Invoker) -> None:
    spec = app.get("daily")
    broken = type(spec)(
        name="broken",
        trigger={**spec.trigger, "schedule": "0 0 25 * * *"},
        bindings=spec.bindings,
        user_function=spec.user_function,
        is_async=False,
    )
    with pytest.raises(ScheduleError, match="'broken'"):
        TimerScheduler([broken], invoker, VirtualClock(START), MemoryScheduleStatusStore())


async def test_blob_status_store_persists_at_the_host_path(
    app: LoadedApp, invoker: Invoker, calls: list[tuple[str, func.TimerRequest]], storage_connection_string: str
) -> None:
    host_id = f"test-{uuid4().hex[:8]}"
    clock = VirtualClock(START)
    store = BlobScheduleStatusStore(storage_connection_string, host_id)
    assert await store.get("daily") is None
    first = TimerScheduler([app.get("daily")], invoker, clock, store)
    await first.start()
    await settle(first)
    await first.stop()

    async with BlobServiceClient.from_connection_string(storage_connection_string) as service:
        blob = service.get_blob_client(HOST_CONTAINER, f"timers/{host_id}/Host.Functions.daily/status")
        body = json.loads(await (await blob.download_blob()).readall())
    assert body == {"Last": DEFAULT, "Next": "2026-01-02T09:00:00+00:00", "LastUpdated": "2026-01-01T09:00:00+00:00"}

    clock.advance(timedelta(days=2))
    second = TimerScheduler(
        [app.get("daily")], invoker, clock, BlobScheduleStatusStore(storage_connection_string, host_id)
    )
    await second.start()
    await settle(second)
    await second.stop()
    assert [past_due for past_due, _ in statuses(calls, "daily")] == [True]
    assert await store.get("daily") == ScheduleStatus(
        last=datetime(2026, 1, 3, 9, tzinfo=UTC),
        next=datetime(2026, 1, 4, 9, tzinfo=UTC),
        last_updated=datetime(2026, 1, 3, 9, tzinfo=UTC),
    )


async def test_a_timer_function_gets_its_other_input_bindings(invoker: Invoker) -> None:
    app = load_app(Path(__file__).parent / "apps" / "timer_inputs")
    received: list[str] = app.get("with_client").user_function.__globals__["RECEIVED"]
    supplied: list[str] = []

    def inputs_for(spec: FunctionSpec) -> dict[str, Any]:
        supplied.append(spec.name)
        return {"client": '{"taskHubName": "hub"}'}

    scheduler = TimerScheduler(
        app.functions, invoker, VirtualClock(START), MemoryScheduleStatusStore(), inputs_for=inputs_for
    )
    await scheduler.start()
    try:
        await scheduler.fire_now("with_client")
    finally:
        await scheduler.stop()
    assert supplied == ["with_client"]
    assert received == ['{"taskHubName": "hub"}']


def holds_lock(scheduler: TimerScheduler) -> bool:
    return all(t.listener_lock is not None and t.listener_lock.held for t in scheduler._timers.values())


async def test_two_host_processes_fire_each_occurrence_once_and_the_other_takes_over_after_a_stop(
    app: LoadedApp, invoker: Invoker, calls: list[tuple[str, func.TimerRequest]], storage_connection_string: str
) -> None:
    from devhost.leases import ListenerLocks

    clock = VirtualClock(START)
    store = MemoryScheduleStatusStore()  # one storage account for the whole app, as in Azure
    host_id = f"h-{uuid4().hex[:8]}"

    def process() -> TimerScheduler:
        locks = ListenerLocks(storage_connection_string, host_id, timedelta(seconds=15))
        return TimerScheduler(
            [app.get("daily")], invoker, clock, store, listener_locks=locks, lock_recovery_interval=0.05
        )

    first, second = process(), process()
    await first.start()
    await second.start()
    try:
        await asyncio.sleep(0.3)  # several lock attempts by whichever process lost
        for _ in range(3):
            clock.advance(timedelta(days=1))
            await settle(first)
            await settle(second)
        assert len(statuses(calls, "daily")) == 3  # both listening would give 6

        holder, waiter = (first, second) if holds_lock(first) else (second, first)
        assert holds_lock(holder) and not holds_lock(waiter)
        await holder.stop()  # releases the lease: the waiting process's next attempt gets it
        async with asyncio.timeout(5):
            while not holds_lock(waiter):  # noqa: ASYNC110 (polls another task's lease)
                await asyncio.sleep(0.02)
        clock.advance(timedelta(days=1))
        await settle(waiter)
        assert len(statuses(calls, "daily")) == 4
    finally:
        await first.stop()
        await second.stop()
