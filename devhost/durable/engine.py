"""The Durable engine: instance lifecycle, episodes and activity workers over a `Store`.

An episode claims one instance with its due messages, invokes the orchestrator with
`[past history (played), OrchestratorStarted(now), *messages]`, replays the answer (replayer.py)
and commits the new history, the instance row and all outgoing work in one store commit. Activities
run at least once (leased; a lost lease means redelivery) and their results are de-duplicated
against the history before an episode sees them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from devhost.clock import Clock, SystemClock
from devhost.durable import protocol as p
from devhost.durable.functions import ActivityFailure, FunctionRunner, unknown_function
from devhost.durable.protocol import Event, EventType, RuntimeStatus
from devhost.durable.replayer import Decisions, replay
from devhost.durable.store import (
    ActivityWork,
    EpisodeCommit,
    EpisodeWork,
    InstanceQuery,
    InstanceRecord,
    Message,
    Store,
)

log = logging.getLogger("devhost.durable")

_COMPLETIONS = {
    int(EventType.TASK_COMPLETED): "TaskScheduledId",
    int(EventType.TASK_FAILED): "TaskScheduledId",
    int(EventType.SUB_ORCHESTRATION_COMPLETED): "TaskScheduledId",
    int(EventType.SUB_ORCHESTRATION_FAILED): "TaskScheduledId",
    int(EventType.TIMER_FIRED): "TimerId",
}
_CONTROL = {int(EventType.EXECUTION_TERMINATED), int(EventType.EXECUTION_SUSPENDED), int(EventType.EXECUTION_RESUMED)}


# host.json extensions.durableTask.overridableExistingInstanceStates, and the runtime statuses in which
# an existing instance refuses start_new with its id (the extension's
# OverridableStatesExtensions.ToDedupeStatuses); in any other status it is replaced.
OVERRIDABLE_STATES: dict[str, frozenset[str]] = {
    "NonRunningStates": frozenset(
        {RuntimeStatus.RUNNING, RuntimeStatus.CONTINUED_AS_NEW, RuntimeStatus.PENDING, RuntimeStatus.SUSPENDED}
    ),
    "AnyState": frozenset(),
}
DEFAULT_OVERRIDABLE_STATES = "NonRunningStates"  # Durable Functions 2.x


def dedupe_statuses(setting: object) -> frozenset[str]:
    """The statuses that refuse a start under `setting` (None: the default), an enum name the host
    binds case-insensitively; ValueError for anything else."""
    text = DEFAULT_OVERRIDABLE_STATES if setting is None else str(setting)
    for name, statuses in OVERRIDABLE_STATES.items():
        if text.strip().lower() == name.lower():
            return statuses
    allowed = " or ".join(OVERRIDABLE_STATES)
    raise ValueError(f"overridableExistingInstanceStates must be {allowed}, not {setting!r}")


class UnknownOrchestratorError(LookupError):
    """start_new named no orchestrator function (the extension answers 400)."""


class InstanceNotFoundError(LookupError):
    """No such instance (404)."""


class InstanceGoneError(Exception):
    """The instance is in a terminal state (410)."""


@dataclass
class Chaos:
    """Fault injection for tests of at-least-once delivery.

    `duplicate_activity_results`: deliver every activity result twice.
    `crash_activity(name, dequeue_count)`: when it returns True the engine behaves as if its process
    died after running the activity: the result is dropped and the lease left to expire.
    """

    duplicate_activity_results: bool = False
    crash_activity: Callable[[str, int], bool] | None = None


class DurableEngine:
    """One task hub's orchestration and activity dispatchers."""

    def __init__(
        self,
        store: Store,
        runner: FunctionRunner,
        *,
        clock: Clock | None = None,
        worker_id: str | None = None,
        poll_interval: float = 0.25,
        activity_lease: timedelta = timedelta(seconds=30),
        max_concurrent_activities: int = 10,
        orchestration_workers: int = 2,
        chaos: Chaos | None = None,
        overridable_states: str | None = None,
    ) -> None:
        self.store = store
        self.dedupe_statuses = dedupe_statuses(overridable_states)
        self.runner = runner
        self.clock: Clock = clock or SystemClock()
        self.worker_id = worker_id or f"devhost-{uuid.uuid4().hex[:8]}"
        self.poll_interval = poll_interval
        self.activity_lease = activity_lease
        self.chaos = chaos or Chaos()
        self._activity_slots = asyncio.Semaphore(max_concurrent_activities)
        self._orchestration_workers = orchestration_workers
        self._wakeups: list[asyncio.Event] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._running_activities: set[asyncio.Task[None]] = set()
        self._leased: dict[int, ActivityWork] = {}
        self._stopping = False

    @property
    def hub(self) -> str:
        return self.store.hub

    # --- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store and start the dispatchers; running instances resume from their stored state."""
        await self.store.open()
        self._stopping = False
        for index in range(self._orchestration_workers):
            self._tasks.append(asyncio.create_task(self._orchestration_loop(), name=f"durable-orchestrations-{index}"))
        self._tasks.append(asyncio.create_task(self._activity_loop(), name="durable-activities"))

    async def stop(self, *, graceful: bool = True) -> None:
        """Stop the dispatchers. Graceful: wait for running activities; otherwise abandon them like a crash."""
        self._stopping = True
        self._wake()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if graceful:
            await asyncio.gather(*self._running_activities, return_exceptions=True)
        else:
            for task in self._running_activities:
                task.cancel()
            await asyncio.gather(*self._running_activities, return_exceptions=True)
        self._running_activities.clear()
        await self.store.close()

    def _wake(self) -> None:
        for event in self._wakeups:
            event.set()

    async def _idle(self, wakeup: asyncio.Event) -> None:
        due = await self.store.next_due()
        waits: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(wakeup.wait()),
            asyncio.ensure_future(asyncio.sleep(self.poll_interval)),
        ]
        if due is not None and due > self.clock.now():
            waits.append(asyncio.ensure_future(self.clock.sleep_until(due)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()
        wakeup.clear()

    # --- client operations (the HTTP API and the harness call these) ---------------------------------

    async def start_new(
        self, name: str, instance_id: str | None = None, input_text: str | None = None, version: str | None = None
    ) -> str:
        """Create an instance; `input_text` is ExecutionStarted.Input (JSON text). An existing instance
        with that id is replaced unless its status is one `overridable_states` protects
        (InstanceExistsError); a replaced execution's pending work and late results are dropped."""
        known = {n.lower(): n for n in self.runner.orchestrators()}
        if name.lower() not in known:
            raise UnknownOrchestratorError(unknown_function(name, "orchestrator", known.values()))
        name = known[name.lower()]
        instance_id = instance_id or uuid.uuid4().hex
        now = self.clock.now()
        execution_id = uuid.uuid4().hex
        record = InstanceRecord(instance_id, name, execution_id, RuntimeStatus.PENDING, input_text, now, now)
        record.version = version or ""
        start = p.execution_started(
            now,
            instance_id=instance_id,
            execution_id=execution_id,
            name=name,
            input_text=input_text,
            version=record.version,
        )
        message = Message(instance_id, start, now, execution_id)
        await self.store.create_instance(record, message, dedupe_statuses=self.dedupe_statuses)
        self._wake()
        return instance_id

    async def _live(self, instance_id: str) -> InstanceRecord:
        record = await self.store.get_instance(instance_id)
        if record is None:
            raise InstanceNotFoundError(instance_id)
        if record.status in RuntimeStatus.TERMINAL:
            raise InstanceGoneError(instance_id)
        return record

    async def raise_event(self, instance_id: str, name: str, input_text: str | None) -> None:
        """Queue EventRaised; `input_text` is its Input (JSON text)."""
        await self._live(instance_id)
        now = self.clock.now()
        await self.store.send(Message(instance_id, p.event_raised(now, name, input_text), now))
        self._wake()

    async def terminate(self, instance_id: str, reason: str | None) -> None:
        """Queue a termination (processed as its own episode)."""
        await self._live(instance_id)
        now = self.clock.now()
        await self.store.send(Message(instance_id, p.execution_terminated(now, reason), now))
        self._wake()

    async def suspend(self, instance_id: str, reason: str | None) -> None:
        """Queue a suspension."""
        await self._live(instance_id)
        now = self.clock.now()
        await self.store.send(Message(instance_id, p.execution_suspended(now, reason), now))
        self._wake()

    async def resume(self, instance_id: str, reason: str | None) -> None:
        """Queue a resumption."""
        await self._live(instance_id)
        now = self.clock.now()
        await self.store.send(Message(instance_id, p.execution_resumed(now, reason), now))
        self._wake()

    async def restart(self, instance_id: str, *, new_instance_id: bool = True) -> str:
        """Start the instance's orchestrator again with its original input."""
        record = await self.store.get_instance(instance_id)
        if record is None:
            raise InstanceNotFoundError(instance_id)
        target = None if new_instance_id else instance_id
        return await self.start_new(record.name, target, record.input, record.version or None)

    async def purge(self, instance_id: str) -> int:
        """Delete a terminal instance with its history; 0 when absent or still running."""
        record = await self.store.get_instance(instance_id)
        if record is None or record.status not in RuntimeStatus.TERMINAL:
            return 0
        return await self.store.purge([instance_id])

    async def purge_by(self, query: InstanceQuery) -> int:
        """Delete every terminal instance matching `query`."""
        found = [r.instance_id for r in await self.store.query(query) if r.status in RuntimeStatus.TERMINAL]
        return await self.store.purge(found) if found else 0

    async def status(
        self,
        instance_id: str,
        *,
        show_history: bool = False,
        show_history_output: bool = False,
        show_input: bool = True,
    ) -> dict[str, Any] | None:
        """The status payload of `HttpApiHandler` (None when the instance does not exist)."""
        record = await self.store.get_instance(instance_id)
        if record is None:
            return None
        payload = status_payload(record, show_input=show_input)
        if show_history:
            history = await self.store.get_history(instance_id)
            payload["historyEvents"] = history_payload(history, with_output=show_history_output)
        return payload

    async def query(self, query: InstanceQuery, *, show_input: bool = True) -> list[dict[str, Any]]:
        """Status payloads of all matching instances."""
        return [status_payload(r, show_input=show_input) for r in await self.store.query(query)]

    async def wait_for(
        self, instance_id: str, statuses: Iterable[str] = RuntimeStatus.TERMINAL, seconds: float = 10.0
    ) -> InstanceRecord:
        """Poll (wall-clock) until the instance reaches one of `statuses`; TimeoutError otherwise."""
        wanted = set(statuses)
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            record = await self.store.get_instance(instance_id)
            if record is not None and record.status in wanted:
                return record
            if asyncio.get_running_loop().time() > deadline:
                state = record.status if record else "absent"
                raise TimeoutError(f"instance {instance_id} is {state}, not {sorted(wanted)}, after {seconds}s")
            await asyncio.sleep(0.01)

    # --- orchestration dispatcher ---------------------------------------------------------------------

    async def _orchestration_loop(self) -> None:
        wakeup = asyncio.Event()
        self._wakeups.append(wakeup)
        try:
            while not self._stopping:
                try:
                    worked = await self.run_one_episode()
                except Exception:
                    log.exception("durable episode failed; its messages will be retried")
                    worked = False
                    await asyncio.sleep(self.poll_interval)
                if not worked:
                    await self._idle(wakeup)
        finally:
            self._wakeups.remove(wakeup)

    async def run_one_episode(self) -> bool:
        """Claim and run one episode; False when nothing was due."""
        async with self.store.claim_episode(self.clock.now()) as work:
            if work is None:
                return False
            commit = await self._episode(work)
            await work.commit(commit)
        self._wake()
        return True

    async def _episode(self, work: EpisodeWork) -> EpisodeCommit:
        record, history = work.instance, work.history
        consumed = [m.id for m in work.messages]
        if record is None or record.status in RuntimeStatus.TERMINAL:
            # Late messages for a finished or purged instance are dropped, as DTFx does.
            return EpisodeCommit(record or _placeholder(work), [], consumed)
        current = [m for m in work.messages if m.execution_id in (None, record.execution_id)]
        batch: list[Message] = []
        for message in current:
            if int(message.event["EventType"]) in _CONTROL:
                if not batch:
                    batch = [message]
                break
            batch.append(message)
        consumed = [m.id for m in work.messages if m not in current] + [m.id for m in batch]
        now = self.clock.now()
        if batch and int(batch[0].event["EventType"]) in _CONTROL:
            return self._control(record, batch[0], now, consumed)
        events = _dedupe(history, [m.event for m in batch])
        if not events or (not history and not any(e["EventType"] == EventType.EXECUTION_STARTED for e in events)):
            return EpisodeCommit(record, [], consumed)
        new = [p.orchestrator_started(now), *events]
        full = p.played(history) + new
        started = next(e for e in full if e["EventType"] == EventType.EXECUTION_STARTED)
        context = p.context_json(
            full,
            instance_id=record.instance_id,
            input_text=started.get("Input"),
            parent_instance_id=record.parent.instance_id if record.parent else None,
            is_replaying=bool(history),
        )
        answer: p.OrchestratorState | p.OrchestratorFailure
        try:
            answer = p.OrchestratorState.from_json(await self.runner.run_orchestrator(record.name, context))
        except Exception as exc:
            answer = p.parse_failure(str(exc))
        decisions = replay(full, answer, when=now)
        return self._apply(record, new, decisions, consumed, now)

    def _apply(
        self, record: InstanceRecord, new: list[Event], decisions: Decisions, consumed: list[int], now: datetime
    ) -> EpisodeCommit:
        record = replace(record, updated_at=now, custom_status=decisions.custom_status)
        if record.status in (RuntimeStatus.PENDING, RuntimeStatus.CONTINUED_AS_NEW):
            record.status = RuntimeStatus.RUNNING
        commit = EpisodeCommit(record, [*new, *decisions.events, p.orchestrator_completed(now)], consumed)
        execution = record.execution_id
        for activity in decisions.activities:
            commit.activities.append(
                ActivityWork(record.instance_id, execution, activity.task_id, activity.name, activity.input)
            )
        for timer in decisions.timers:
            fired = p.timer_fired(timer.fire_at, timer.timer_id, timer.fire_at)
            commit.messages.append(Message(record.instance_id, fired, timer.fire_at, execution))
        for sub in decisions.sub_orchestrations:
            child_execution = uuid.uuid4().hex
            parent = p.ParentInstance(record.name, record.instance_id, execution, sub.task_id)
            child = InstanceRecord(
                sub.instance_id, sub.name, child_execution, RuntimeStatus.PENDING, sub.input, now, now, parent=parent
            )
            child.version = sub.version
            start = p.execution_started(
                now,
                instance_id=sub.instance_id,
                execution_id=child_execution,
                name=sub.name,
                input_text=sub.input,
                version=sub.version,
                parent=parent,
            )
            commit.new_instances.append((child, Message(sub.instance_id, start, now, child_execution)))
        completion = decisions.completion
        if completion is None:
            return commit
        if completion.status == RuntimeStatus.CONTINUED_AS_NEW:
            next_execution = uuid.uuid4().hex
            start = p.execution_started(
                now,
                instance_id=record.instance_id,
                execution_id=next_execution,
                name=record.name,
                input_text=completion.result,
                version=record.version,
                parent=record.parent,
            )
            commit.messages.append(Message(record.instance_id, start, now, next_execution))
            # The finished execution keeps its history (under its own id); the new one starts empty.
            commit.history_execution = execution
            record.status, record.input, record.output = RuntimeStatus.CONTINUED_AS_NEW, completion.result, None
            record.execution_id = next_execution
            return commit
        record.status, record.output = completion.status, completion.result
        self._notify_parent(commit, record, completion.status, completion.result, completion.error, now)
        return commit

    def _control(self, record: InstanceRecord, message: Message, now: datetime, consumed: list[int]) -> EpisodeCommit:
        kind = int(message.event["EventType"])
        record = replace(record, updated_at=now)
        events: list[Event] = [p.orchestrator_started(now), {**message.event, "IsPlayed": False}]
        if kind == EventType.EXECUTION_TERMINATED:
            reason = message.event.get("Input")
            result = json.dumps(reason)
            events.append(p.execution_completed(now, RuntimeStatus.TERMINATED, result))
            record.status, record.output = RuntimeStatus.TERMINATED, result
        elif kind == EventType.EXECUTION_SUSPENDED and record.status != RuntimeStatus.SUSPENDED:
            record.status = RuntimeStatus.SUSPENDED
        elif kind == EventType.EXECUTION_RESUMED and record.status == RuntimeStatus.SUSPENDED:
            record.status = RuntimeStatus.RUNNING
        else:
            return EpisodeCommit(record, [], consumed)
        commit = EpisodeCommit(record, [*events, p.orchestrator_completed(now)], consumed)
        if record.status == RuntimeStatus.TERMINATED:
            self._notify_parent(commit, record, RuntimeStatus.TERMINATED, record.output, str(reason), now)
        return commit

    @staticmethod
    def _notify_parent(
        commit: EpisodeCommit, record: InstanceRecord, status: str, result: str | None, error: str | None, now: datetime
    ) -> None:
        parent = record.parent
        if parent is None:
            return
        if status == RuntimeStatus.COMPLETED:
            event = p.sub_orchestration_completed(now, parent.task_id, result)
        else:
            event = p.sub_orchestration_failed(now, parent.task_id, error or status, None)
        commit.messages.append(Message(parent.instance_id, event, now, parent.execution_id))

    # --- activity dispatcher ------------------------------------------------------------------------

    async def _activity_loop(self) -> None:
        wakeup = asyncio.Event()
        self._wakeups.append(wakeup)
        try:
            while not self._stopping:
                await self._activity_slots.acquire()
                real_now = datetime.now(UTC)
                try:
                    work = await self.store.claim_activity(self.worker_id, real_now, real_now + self.activity_lease)
                except Exception:
                    self._activity_slots.release()
                    log.exception("claiming an activity failed")
                    await asyncio.sleep(self.poll_interval)
                    continue
                if work is None:
                    self._activity_slots.release()
                    await self._idle_activities(wakeup)
                    continue
                task = asyncio.create_task(self._run_activity(work))
                self._running_activities.add(task)
                task.add_done_callback(self._running_activities.discard)
        finally:
            self._wakeups.remove(wakeup)

    async def _idle_activities(self, wakeup: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wakeup.wait(), self.poll_interval)
        wakeup.clear()

    async def _run_activity(self, work: ActivityWork) -> None:
        try:
            input_text = None if work.input is None else json.loads(work.input)
            try:
                result = await self.runner.run_activity(work.name, input_text)
                event = p.task_completed(self.clock.now(), work.task_id, result)
            except ActivityFailure as failure:
                event = p.task_failed(self.clock.now(), work.task_id, failure.reason, failure.details)
            crash = self.chaos.crash_activity
            if crash is not None and crash(work.name, work.dequeue_count):
                log.warning("chaos: dropping the result of %s#%s (lease left to expire)", work.name, work.task_id)
                return
            message = Message(work.instance_id, event, self.clock.now(), work.execution_id)
            if await self.store.complete_activity(work, self.worker_id, message):
                if self.chaos.duplicate_activity_results:
                    await self.store.send(message)
                self._wake()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("activity %s#%s could not be completed; it will be redelivered", work.name, work.task_id)
        finally:
            self._activity_slots.release()


def _placeholder(work: EpisodeWork) -> InstanceRecord:
    instance_id = work.messages[0].instance_id if work.messages else ""
    epoch = datetime.fromtimestamp(0, UTC)
    return InstanceRecord(instance_id, "", "", RuntimeStatus.COMPLETED, None, epoch, epoch)


def _dedupe(history: list[Event], incoming: list[Event]) -> list[Event]:
    """Drop duplicate completions (at-least-once delivery) and a repeated ExecutionStarted."""
    seen: set[tuple[str, int]] = set()
    started = any(e["EventType"] == EventType.EXECUTION_STARTED for e in history)
    for event in history:
        key = _COMPLETIONS.get(int(event["EventType"]))
        if key is not None:
            seen.add((_family(event), int(event[key])))
    kept: list[Event] = []
    for event in incoming:
        kind = int(event["EventType"])
        if kind == EventType.EXECUTION_STARTED:
            if started:
                continue
            started = True
        key = _COMPLETIONS.get(kind)
        if key is not None:
            marker = (_family(event), int(event[key]))
            if marker in seen:
                log.info("dropping duplicate %s for id %s", EventType(kind).name, marker[1])
                continue
            seen.add(marker)
        kept.append({**event, "IsPlayed": False})
    return kept


def _family(event: Event) -> str:
    return "timer" if event["EventType"] == EventType.TIMER_FIRED else "task"


def status_payload(record: InstanceRecord, *, show_input: bool = True) -> dict[str, Any]:
    """`HttpApiHandler.ConvertFrom`: name, instanceId, runtimeStatus, input, customStatus, output, times."""
    return {
        "name": record.name,
        "instanceId": record.instance_id,
        "runtimeStatus": record.status,
        "input": _parse(record.input) if show_input else None,
        "customStatus": _parse(record.custom_status),
        "output": _parse(record.output),
        "createdTime": p.format_status_time(record.created_at),
        "lastUpdatedTime": p.format_status_time(record.updated_at),
    }


def history_payload(history: list[Event], *, with_output: bool) -> list[dict[str, Any]]:
    """History for `showHistory=true`: each event with its type by name (orchestrator start/end omitted)."""
    skipped = {EventType.ORCHESTRATOR_STARTED, EventType.ORCHESTRATOR_COMPLETED}
    rows = []
    for event in history:
        kind = EventType(int(event["EventType"]))
        if kind in skipped:
            continue
        row = {k: v for k, v in event.items() if k not in ("IsPlayed", "EventType")}
        row["EventType"] = "".join(part.capitalize() for part in kind.name.split("_"))
        if not with_output:
            row.pop("Result", None)
            row.pop("Input", None)
        rows.append(row)
    return rows


def _parse(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
