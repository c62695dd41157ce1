"""Timer triggers: fire each timer function at its schedule's occurrences on an injected clock.

A port of the host's `TimerListener` (azure-webjobs-sdk-extensions), per function:

- Start: with schedule monitoring on, read the persisted `ScheduleStatus`; if its `Next` has passed
  (the host was down), run once at once with `IsPastDue=true` (`ScheduleMonitor.CheckPastDueAsync`).
  Otherwise, with `runOnStartup`, run once at once.
- Then sleep until `Next`, invoke, and compute the following `Next` from the invocation time.
- Time jumps are coalesced, as in the host: when the clock passes several occurrences at once (a
  `VirtualClock` advanced by a week over a daily job, a suspended laptop), the function runs **once**,
  and `Next` is computed from the current time. That run has `IsPastDue=false`: the running listener
  never sets it; only the start-up check does. Restart the scheduler to see a past-due catch-up run.
  A test that advances a `VirtualClock` step by step must `await scheduler.quiesce()` between steps.
- `useMonitor` defaults to true and, like the host, is switched off for schedules that fire more than
  once a minute. Without monitoring, the function sees `ScheduleStatus: null` (Python gets `{}`).
- Invocations of one function never overlap; a failing invocation is logged and the schedule goes on.

The trigger value is the host's TimerInfo JSON: `{"Schedule": {"AdjustForDST": true}, "ScheduleStatus":
{"Last", "Next", "LastUpdated"} | null, "IsPastDue": bool}`, with times in the schedule's zone.

Singleton: with `listener_locks` (devhost passes them whenever AzureWebJobsStorage is set), a
function's listener runs only in the process holding its listener lock, a lease on
`azure-webjobs-hosts/locks/{hostId}/Host.Functions.{name}.Listener` like the host's
`SingletonListener`, so several host processes (FUNCTIONS_WORKER_PROCESS_COUNT, scale-out) fire each
occurrence once. A process without the lock retries every `lock_recovery_interval` seconds (host.json
`singleton.listenerLockRecoveryPollingInterval`); when it gets the lock its listener starts, with the
start-up checks above, as the host's does. Lock waits use real time, whatever the clock.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from azure.functions.meta import Datum

from devhost.clock import Clock
from devhost.invoker import InvocationError, Invoker
from devhost.loader import FunctionSpec
from devhost.ncrontab import Schedule, parse_schedule
from devhost.timer_status import ScheduleStatus, ScheduleStatusStore

log = logging.getLogger("devhost.timers")

TIMER_TRIGGER = "timerTrigger"


class ListenerLock(Protocol):
    """A singleton listener lock (devhost.leases.BlobLease)."""

    @property
    def held(self) -> bool: ...

    async def try_acquire(self) -> bool: ...

    async def release(self) -> None: ...


class ListenerLockFactory(Protocol):
    """Gives each timer function its listener lock (devhost.leases.ListenerLocks)."""

    async def lock_for(self, function_name: str) -> ListenerLock: ...

    async def close(self) -> None: ...


@dataclass(eq=False)
class _Timer:
    spec: FunctionSpec
    schedule: Schedule
    use_monitor: bool
    run_on_startup: bool
    status: ScheduleStatus | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    sleeping_until: datetime | None = None
    task: asyncio.Task[None] | None = None
    listener_lock: ListenerLock | None = None
    waiting_for_lock: bool = False


def schedule_for(spec: FunctionSpec, environ: Mapping[str, str] | None = None) -> Schedule:
    """The parsed schedule of a timer function; raises `ScheduleError` naming the function if invalid."""
    return parse_schedule(str(spec.trigger.get("schedule", "")), function_name=spec.name, environ=environ)


def timer_info(status: ScheduleStatus | None, schedule: Schedule, *, is_past_due: bool) -> dict[str, Any]:
    """The TimerInfo JSON the host sends to the worker."""
    return {
        "Schedule": {"AdjustForDST": True},
        "ScheduleStatus": None if status is None else status.to_json(schedule.tz),
        "IsPastDue": is_past_due,
    }


class TimerScheduler:
    """Runs every `timerTrigger` function in `functions` on `clock` (other trigger types are ignored)."""

    def __init__(
        self,
        functions: Sequence[FunctionSpec],
        invoker: Invoker,
        clock: Clock,
        status_store: ScheduleStatusStore,
        *,
        environ: Mapping[str, str] | None = None,
        inputs_for: Callable[[FunctionSpec], Mapping[str, Any]] | None = None,
        listener_locks: ListenerLockFactory | None = None,
        lock_recovery_interval: float = 60.0,
    ) -> None:
        self._invoker = invoker
        # Values of other input bindings (e.g. a Durable client on a timer), as the host supplies them.
        self._inputs_for = inputs_for
        self._listener_locks = listener_locks
        self._lock_recovery_interval = lock_recovery_interval
        self._clock = clock
        self._store = status_store
        self._timers: dict[str, _Timer] = {}
        now = clock.now()
        for spec in functions:
            if spec.trigger_type != TIMER_TRIGGER:
                continue
            schedule = schedule_for(spec, environ)
            use_monitor = bool(spec.trigger.get("useMonitor", True))
            if use_monitor and schedule.runs_more_than_once_a_minute(now):
                log.debug("Function '%s': UseMonitor changed to false based on schedule frequency.", spec.name)
                use_monitor = False
            self._timers[spec.name.lower()] = _Timer(
                spec, schedule, use_monitor, bool(spec.trigger.get("runOnStartup", False))
            )
        self._stopping = False
        self._manual: set[asyncio.Task[None]] = set()

    @property
    def function_names(self) -> list[str]:
        """The timer functions this scheduler runs."""
        return [timer.spec.name for timer in self._timers.values()]

    async def start(self) -> None:
        """Start one listener per timer function (start-up checks run in the background, like the host)."""
        self._stopping = False
        for timer in self._timers.values():
            if timer.task is None or timer.task.done():
                timer.task = asyncio.create_task(self._listen(timer), name=f"timer:{timer.spec.name}")

    async def stop(self) -> None:
        """Stop scheduling; an invocation in progress is awaited, not cancelled."""
        self._stopping = True
        tasks = [timer.task for timer in self._timers.values() if timer.task is not None]
        for timer in self._timers.values():
            if timer.task is not None and (timer.sleeping_until is not None or timer.waiting_for_lock):
                timer.task.cancel()
        await asyncio.gather(*tasks, *self._manual, return_exceptions=True)
        for timer in self._timers.values():
            timer.task = None
            timer.sleeping_until = None
            timer.waiting_for_lock = False
            if timer.listener_lock is not None:
                await timer.listener_lock.release()
                timer.listener_lock = None
        if self._listener_locks is not None:
            await self._listener_locks.close()

    async def fire_now(self, name: str) -> None:
        """Invoke a timer function once now (the admin API), as the host's binding does for a manual call.

        The function gets the stored schedule status and `IsPastDue=false`; the status is not updated.
        Failures are logged, not raised (the admin API answers 202 before the function runs).
        Raises KeyError for an unknown timer function.
        """
        timer = self._timers[name.lower()]
        task = asyncio.create_task(self._fire_manually(timer))
        self._manual.add(task)
        try:
            await task
        finally:
            self._manual.discard(task)

    async def quiesce(self) -> None:
        """Return once every listener sleeps until a future occurrence and no invocation runs.

        For tests: `clock.advance(...)` then `await scheduler.quiesce()` sees every due invocation done
        (bound it with `asyncio.timeout`).
        """
        # Polled: idleness also depends on the clock, which another thread may move at any time.
        while not self._idle():  # noqa: ASYNC110
            await asyncio.sleep(0.005)

    def _idle(self) -> bool:
        now = self._clock.now()
        if self._manual:
            return False
        return all(
            timer.task is None
            or timer.task.done()
            or timer.waiting_for_lock
            or (timer.sleeping_until is not None and timer.sleeping_until > now and not timer.lock.locked())
            for timer in self._timers.values()
        )

    async def _fire_manually(self, timer: _Timer) -> None:
        status = await self._read_status(timer) if timer.use_monitor else None
        await self._call(timer, status, is_past_due=False, reason="Manual")

    async def _listen(self, timer: _Timer) -> None:
        if self._listener_locks is None:
            await self._run_listener(timer)
            return
        while not self._stopping:
            if not await self._hold_listener_lock(timer):
                return
            timer.status = None  # a listener starting here knows only what storage says, as on a new instance
            await self._run_listener(timer)
            if not self._stopping:
                log.warning("Function '%s' lost its singleton listener lock; its listener stopped", timer.spec.name)

    async def _hold_listener_lock(self, timer: _Timer) -> bool:
        """Wait until this process holds the function's listener lock; False once stopping."""
        assert self._listener_locks is not None
        logged = False
        while not self._stopping:
            try:
                if timer.listener_lock is None:
                    timer.listener_lock = await self._listener_locks.lock_for(timer.spec.name)
                if await timer.listener_lock.try_acquire():
                    log.debug("Function '%s' acquired its singleton listener lock", timer.spec.name)
                    return True
                if not logged:
                    log.info(
                        "Function '%s': another host process holds the singleton listener lock; retrying every %g s",
                        timer.spec.name,
                        self._lock_recovery_interval,
                    )
                    logged = True
            except Exception:
                log.exception("Function '%s': taking the singleton listener lock failed", timer.spec.name)
            timer.waiting_for_lock = True
            try:
                await asyncio.sleep(self._lock_recovery_interval)
            finally:
                timer.waiting_for_lock = False
        return False

    def _holds_lock(self, timer: _Timer) -> bool:
        return timer.listener_lock is None or timer.listener_lock.held

    async def _run_listener(self, timer: _Timer) -> None:
        """The host's TimerListener from start to stop (or until the listener lock is lost)."""
        now = self._clock.now()
        is_past_due = False
        if timer.use_monitor:
            is_past_due, timer.status = await self._check_past_due(timer, now)
        if timer.status is None:
            timer.status = ScheduleStatus(last=None, next=timer.schedule.next_after(now), last_updated=None)
        if is_past_due:
            log.info("Function '%s' is past due on startup. Executing now.", timer.spec.name)
            await self._invoke(timer, self._clock.now(), is_past_due=True)
        elif timer.run_on_startup:
            log.info("Function '%s' is configured to run on startup. Executing now.", timer.spec.name)
            await self._invoke(timer, self._clock.now(), run_on_startup=True)
        while not self._stopping and self._holds_lock(timer):
            assert timer.status is not None and timer.status.next is not None
            timer.sleeping_until = timer.status.next
            try:
                await self._clock.sleep_until(timer.status.next)
            finally:
                timer.sleeping_until = None
            if self._stopping or not self._holds_lock(timer):
                break
            await self._invoke(timer, self._clock.now())

    async def _check_past_due(self, timer: _Timer, now: datetime) -> tuple[bool, ScheduleStatus | None]:
        """`ScheduleMonitor.CheckPastDueAsync`: the stored `Next` has passed, unless the schedule changed."""
        schedule, name = timer.schedule, timer.spec.name
        stored = await self._read_status(timer)
        if stored is None:
            # First run ever: record the next occurrence so that downtime before it is detected later.
            await self._write_status(timer, ScheduleStatus(None, schedule.next_after(now), now))
            return False, None
        if stored.last is not None:
            basis = stored.last
        elif stored.last_updated is not None:
            basis = stored.last_updated
        else:
            basis = now
        expected = schedule.next_after(basis)
        recorded = stored
        if stored.next != expected:
            # The schedule changed while we were down: don't call an occurrence of the old one past due.
            if now > expected:
                expected, basis = schedule.next_after(now), now
            recorded = ScheduleStatus(last=None, next=expected, last_updated=basis)
            await self._write_status(timer, recorded)
            log.debug("Function '%s': schedule changed; status reset to Next=%s", name, expected.isoformat())
        assert recorded.next is not None
        return now > recorded.next, recorded

    async def _invoke(
        self, timer: _Timer, invocation_time: datetime, *, is_past_due: bool = False, run_on_startup: bool = False
    ) -> None:
        """`TimerListener.InvokeJobFunction`: run once, then record Last/Next from the invocation time."""
        async with timer.lock:
            if self._stopping:
                return
            assert timer.status is not None and timer.status.next is not None
            await self._call(
                timer,
                timer.status if timer.use_monitor else None,
                is_past_due=is_past_due,
                reason="IsPastDue" if is_past_due else "RunOnStartup" if run_on_startup else "Timer",
            )
            adjusted = invocation_time
            # Fired slightly early (clock skew): count from the scheduled time so Next moves on.
            if not is_past_due and not run_on_startup and timer.status.next > invocation_time:
                adjusted = timer.status.next
            timer.status = ScheduleStatus(
                last=adjusted, next=timer.schedule.next_after(adjusted), last_updated=adjusted
            )
            if timer.use_monitor:
                await self._write_status(timer, timer.status)

    async def _call(self, timer: _Timer, status: ScheduleStatus | None, *, is_past_due: bool, reason: str) -> None:
        payload = timer_info(status, timer.schedule, is_past_due=is_past_due)
        datum = Datum(json.dumps(payload), "json")
        now = self._clock.now().astimezone(timer.schedule.tz).isoformat()
        try:
            inputs = self._inputs_for(timer.spec) if self._inputs_for and timer.spec.input_bindings() else None
            await self._invoker.invoke(timer.spec, datum, inputs=inputs, reason=f"{reason}: timer fired at {now}")
        except InvocationError as exc:
            # The invoker has logged the function's exception; the schedule must go on.
            log.warning("%s", exc)
        except Exception:
            log.exception("Timer invocation of '%s' failed", timer.spec.name)

    async def _read_status(self, timer: _Timer) -> ScheduleStatus | None:
        try:
            return await self._store.get(timer.spec.name)
        except Exception:
            log.exception("Function '%s': reading the timer status failed; treating it as absent", timer.spec.name)
            return None

    async def _write_status(self, timer: _Timer, status: ScheduleStatus) -> None:
        try:
            await self._store.put(timer.spec.name, status)
        except Exception:
            # Best effort, as in the host: a lost update at worst means one extra past-due run later.
            log.exception("Function '%s' failed to update the timer trigger status.", timer.spec.name)
