"""A mini-DTFx: replays the SDK's actions against the history exactly as the extension's shim does.

The Durable extension runs a Python orchestration through `OutOfProcOrchestrationShim`: the SDK is
invoked with the whole history, returns its cumulative action list, and the shim then awaits each
action in order (`foreach action: await InvokeAPIFromAction(action)`) inside DTFx's
`TaskOrchestrationExecutor`, which processes the history strictly in order and resumes awaiting
code synchronously as completions arrive. Task and timer ids are therefore allocated by a single
counter in the order this replay reaches them, including the retry attempts and timers of DTFx's
`RetryInterceptor`. Actions the replay schedules that the history does not yet contain are the
episode's new decisions.

Only completion (and failure) matters to the shim, never values, so futures here carry none.
"""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict, deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from devhost.durable import protocol as p
from devhost.durable.protocol import Event, EventType


class NonDeterminismError(Exception):
    """The history does not match what the orchestrator schedules now (DTFx NonDeterministicOrchestrationException)."""

    def __init__(self, details: str) -> None:
        super().__init__(f"Non-Deterministic workflow detected: {details}")


class UnsupportedActionError(Exception):
    """The orchestrator used an API devhost does not implement."""


@dataclass(frozen=True)
class ScheduledActivity:
    """An activity message to send (TaskScheduled)."""

    task_id: int
    name: str
    input: str | None


@dataclass(frozen=True)
class ScheduledTimer:
    """A timer message to deliver at `fire_at` (TimerCreated)."""

    timer_id: int
    fire_at: datetime


@dataclass(frozen=True)
class ScheduledSubOrchestration:
    """A sub-orchestration to start (SubOrchestrationInstanceCreated)."""

    task_id: int
    name: str
    instance_id: str
    input: str | None
    version: str


@dataclass(frozen=True)
class Completion:
    """How the execution ended in this episode.

    `result` is ExecutionCompleted.Result (JSON text); for ContinuedAsNew it is the new input.
    `error` is the failure message for Failed.
    """

    status: str
    result: str | None
    error: str | None = None


@dataclass
class Decisions:
    """The outcome of one episode's replay."""

    events: list[Event] = field(default_factory=list)
    activities: list[ScheduledActivity] = field(default_factory=list)
    timers: list[ScheduledTimer] = field(default_factory=list)
    sub_orchestrations: list[ScheduledSubOrchestration] = field(default_factory=list)
    completion: Completion | None = None
    custom_status: str | None = None


# --- a tiny deterministic task system (continuations run synchronously, like DTFx's scheduler) ------


class _TaskFailed(Exception):
    """An awaited task failed, was cancelled, or its retries were exhausted."""


class _Future:
    __slots__ = ("_callbacks", "done", "error")

    def __init__(self) -> None:
        self.done = False
        self.error: _TaskFailed | None = None
        self._callbacks: list[Callable[[], None]] = []

    def on_done(self, callback: Callable[[], None]) -> None:
        if self.done:
            callback()
        else:
            self._callbacks.append(callback)

    def resolve(self, error: _TaskFailed | None = None) -> None:
        if self.done:
            return
        self.done, self.error = True, error
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()


_Coroutine = Generator[_Future, None, None]


def _spawn(coroutine: _Coroutine) -> _Future:
    """Run `coroutine` until its first incomplete await; resume it whenever that completes."""
    result = _Future()

    def step(error: _TaskFailed | None) -> None:
        try:
            awaited = coroutine.throw(error) if error is not None else coroutine.send(None)
        except StopIteration:
            result.resolve()
            return
        except _TaskFailed as failed:
            result.resolve(failed)
            return
        awaited.on_done(lambda: step(awaited.error))

    step(None)
    return result


def _when_all(children: list[_Future]) -> _Future:
    """`Task.WhenAll`: completes once every child has completed; faults if any faulted."""
    result = _Future()
    remaining = len(children)
    if remaining == 0:
        result.resolve()
        return result

    def child_done() -> None:
        nonlocal remaining
        remaining -= 1
        if remaining == 0:
            first_error = next((c.error for c in children if c.error is not None), None)
            result.resolve(first_error)

    for child in children:
        child.on_done(child_done)
    return result


def _when_any(children: list[_Future]) -> _Future:
    """`Task.WhenAny`: completes (successfully) when the first child completes in any state."""
    result = _Future()
    for child in children:
        child.on_done(result.resolve)
    return result


# --- the replay -----------------------------------------------------------------------------------


@dataclass
class _Pending:
    kind: str  # "activity" | "timer" | "suborchestration"
    name: str | None
    decision: Event
    work: ScheduledActivity | ScheduledTimer | ScheduledSubOrchestration


class _Replay:
    def __init__(self, actions: list[p.Action], when: datetime, instance_id: str, execution_id: str) -> None:
        self.actions = actions
        self.when = when
        self.instance_id = instance_id
        self.execution_id = execution_id
        self.now = when
        self.next_id = 0
        self.pending: dict[int, _Pending] = {}
        self.open_tasks: dict[int, _Future] = {}
        # The extension keeps waiters per name on a stack (the newest waiter gets the event) and
        # buffers events nobody waits for in a FIFO queue.
        self.waiters: dict[str, list[_Future]] = defaultdict(list)
        self.buffered: dict[str, deque[None]] = defaultdict(deque)
        self.shim: _Future | None = None
        self.continued_as_new: str | None = None
        self.continue_requested = False

    # DTFx OrchestrationContext operations -------------------------------------------------------

    def _allocate(self) -> int:
        task_id = self.next_id
        self.next_id += 1
        return task_id

    def schedule_activity(self, name: str, input_text: str | None) -> _Future:
        task_id = self._allocate()
        input_text = stored_input(input_text)
        work = ScheduledActivity(task_id, name, input_text)
        self.pending[task_id] = _Pending("activity", name, p.task_scheduled(self.when, task_id, name, input_text), work)
        return self._open(task_id)

    def create_timer(self, fire_at: datetime, canceled: bool) -> _Future:
        timer_id = self._allocate()
        work = ScheduledTimer(timer_id, fire_at)
        self.pending[timer_id] = _Pending("timer", None, p.timer_created(self.when, timer_id, fire_at), work)
        future = self._open(timer_id)
        if canceled:
            # The shim creates the timer with an already-cancelled token: the id is spent and the
            # timer is still created, but its task is cancelled at once and forgotten.
            del self.open_tasks[timer_id]
            future.resolve(_TaskFailed("timer cancelled"))
        return future

    def call_sub_orchestrator(self, action: p.CallSubOrchestrator) -> _Future:
        task_id = self._allocate()
        instance_id = action.instance_id or f"{self.instance_id}:{task_id}"
        version = action.version or ""
        input_text = stored_input(action.input)
        work = ScheduledSubOrchestration(task_id, action.name, instance_id, input_text, version)
        decision = p.sub_orchestration_created(self.when, task_id, action.name, instance_id, input_text, version)
        self.pending[task_id] = _Pending("suborchestration", action.name, decision, work)
        return self._open(task_id)

    def wait_for_event(self, name: str) -> _Future:
        future = _Future()
        if self.buffered[name]:
            self.buffered[name].popleft()
            future.resolve()
        else:
            self.waiters[name].append(future)
        return future

    def _open(self, task_id: int) -> _Future:
        future = _Future()
        self.open_tasks[task_id] = future
        return future

    # the shim -------------------------------------------------------------------------------------

    def run_shim(self) -> _Coroutine:
        for action in self.actions:
            # The SDK handles task failures itself; the shim only keeps pace with it.
            with contextlib.suppress(_TaskFailed):
                yield from self.invoke(action)

    def invoke(self, action: p.Action) -> _Coroutine:
        if isinstance(action, p.CallActivity):
            name, input_text = action.name, action.input
            if action.retry is None:
                yield self.schedule_activity(name, input_text)
            else:
                yield from self.with_retry(lambda: self.schedule_activity(name, input_text), action.retry)
        elif isinstance(action, p.CallSubOrchestrator):
            sub = action
            if sub.retry is None:
                yield self.call_sub_orchestrator(sub)
            else:
                yield from self.with_retry(lambda: self.call_sub_orchestrator(sub), sub.retry)
        elif isinstance(action, p.CreateTimer):
            yield self.create_timer(action.fire_at, action.canceled)
        elif isinstance(action, p.WaitForExternalEvent):
            yield self.wait_for_event(action.name)
        elif isinstance(action, p.WhenAll):
            yield _when_all([_spawn(self.invoke(child)) for child in action.children])
        elif isinstance(action, p.WhenAny):
            yield _when_any([_spawn(self.invoke(child)) for child in action.children])
        elif isinstance(action, p.ContinueAsNew):
            if not self.continue_requested:
                self.continue_requested, self.continued_as_new = True, stored_input(action.input)
        else:
            raise UnsupportedActionError(f"devhost does not support {p.unsupported_name(action.action_type)} actions")

    def with_retry(self, attempt: Callable[[], _Future], policy: p.RetryPolicy) -> _Coroutine:
        """DTFx `RetryInterceptor.Invoke`."""
        first_attempt = self.now
        last_error: _TaskFailed | None = None
        attempts = max(1, policy.max_attempts)
        for retry_count in range(attempts):
            try:
                yield attempt()
                return
            except _TaskFailed as failed:
                last_error = failed
            if retry_count + 1 < attempts:
                delay = _next_delay(policy, retry_count, first_attempt, self.now)
                if delay <= timedelta(0):
                    break
                yield self.create_timer(self.now + delay, canceled=False)
            else:
                # "Dummy timer for back-compat": one more timer, due at once, after the last failure.
                yield self.create_timer(self.now, canceled=False)
        assert last_error is not None
        raise last_error

    # the executor ---------------------------------------------------------------------------------

    def process(self, event: Event) -> None:
        kind = event["EventType"]
        if kind == EventType.ORCHESTRATOR_STARTED:
            self.now = p.parse_timestamp(event["Timestamp"])
        elif kind == EventType.EXECUTION_STARTED:
            if self.shim is None:
                self.shim = _spawn(self.run_shim())
        elif kind == EventType.TASK_SCHEDULED:
            self.match(event, "activity", "an activity task")
        elif kind == EventType.TIMER_CREATED:
            self.match(event, "timer", "a timer")
        elif kind == EventType.SUB_ORCHESTRATION_CREATED:
            self.match(event, "suborchestration", "a sub-orchestration task")
        elif kind in (EventType.TASK_COMPLETED, EventType.SUB_ORCHESTRATION_COMPLETED):
            self.complete(event["TaskScheduledId"], None)
        elif kind in (EventType.TASK_FAILED, EventType.SUB_ORCHESTRATION_FAILED):
            self.complete(event["TaskScheduledId"], _TaskFailed(str(event.get("Reason"))))
        elif kind == EventType.TIMER_FIRED:
            self.complete(event["TimerId"], None)
        elif kind == EventType.EVENT_RAISED:
            self.raise_event(event["Name"])
        elif kind == EventType.EVENT_SENT:
            raise UnsupportedActionError("devhost does not support entity or event-sent history")

    def match(self, event: Event, kind: str, label: str) -> None:
        task_id = int(event["EventId"])
        pending = self.pending.pop(task_id, None)
        named = f" and name '{event.get('Name')}'" if kind != "timer" else ""
        if pending is None or pending.kind != kind or pending.name != event.get("Name", pending.name):
            current = (
                "hasn't (yet?) scheduled this task" if pending is None else f"instead scheduled {_describe(pending)}"
            )
            raise NonDeterminismError(
                f"A previous execution of this orchestration scheduled {label} with sequence ID {task_id}{named}, "
                f"but the current replay execution {current}. Was a change made to the orchestrator code after "
                "this instance had already started running?"
            )

    def complete(self, task_id: int, error: _TaskFailed | None) -> None:
        future = self.open_tasks.pop(int(task_id), None)
        if future is not None:  # otherwise a duplicate or a cancelled timer: DTFx ignores it
            future.resolve(error)

    def raise_event(self, name: str) -> None:
        if self.waiters[name]:
            self.waiters[name].pop().resolve()
        else:
            self.buffered[name].append(None)

    def new_decisions(self) -> list[_Pending]:
        return [self.pending[task_id] for task_id in sorted(self.pending)]


def stored_input(action_input: str | None) -> str | None:
    """How DTFx stores an action's `input`: the SDK sends `df_dumps` text as a JSON string, the
    extension passes that string on as the input object, and DTFx serializes it again. The consumer
    (`GetInputAsJson`) parses it once and the SDK `df_loads` the resulting text.
    """
    return None if action_input is None else json.dumps(action_input)


def _describe(pending: _Pending) -> str:
    if pending.kind == "timer":
        return "a timer"
    noun = "an activity task" if pending.kind == "activity" else "a sub-orchestration task"
    return f"{noun} named '{pending.name}'"


def _next_delay(policy: p.RetryPolicy, retry_count: int, first_attempt: datetime, now: datetime) -> timedelta:
    """DTFx `RetryInterceptor.ComputeNextDelay` (Handle always true: the SDK cannot set it)."""
    if policy.retry_timeout is not None and now >= first_attempt + policy.retry_timeout:
        return timedelta(0)
    delay = policy.first_retry_interval * (policy.backoff_coefficient**retry_count)
    if policy.max_retry_interval is not None and delay > policy.max_retry_interval:
        delay = policy.max_retry_interval
    return delay


def _execution_started(history: list[Event]) -> Event:
    for event in history:
        if event["EventType"] == EventType.EXECUTION_STARTED:
            return event
    raise ValueError("history has no ExecutionStarted event")


def replay(
    history: list[Event],
    answer: p.OrchestratorState | p.OrchestratorFailure,
    *,
    when: datetime | None = None,
) -> Decisions:
    """Replay one episode.

    `history` is every event of the execution including this episode's OrchestratorStarted and new
    events; `answer` is what the orchestrator function returned (or raised) for that history.
    Decision events are stamped `when` (default: the last OrchestratorStarted's time).
    """
    started = _execution_started(history)
    name = str(started.get("Name"))
    if when is None:
        stamps = [e["Timestamp"] for e in history if e["EventType"] == EventType.ORCHESTRATOR_STARTED]
        when = p.parse_timestamp(stamps[-1])
    if isinstance(answer, p.OrchestratorFailure):
        custom = answer.state.custom_status if answer.state else None
        return _failed(when, p.failed_output(name, answer.error), custom)

    instance = started.get("OrchestrationInstance") or {}
    state = _Replay(answer.actions, when, str(instance.get("InstanceId")), str(instance.get("ExecutionId")))
    try:
        for event in history:
            state.process(event)
    except NonDeterminismError as exc:
        return _failed(when, str(exc), answer.custom_status)
    except UnsupportedActionError as exc:
        return _failed(when, p.failed_output(name, str(exc)), answer.custom_status)

    decisions = Decisions(custom_status=_json_or_none(answer.custom_status))
    for pending in state.new_decisions():
        decisions.events.append(pending.decision)
        if isinstance(pending.work, ScheduledActivity):
            decisions.activities.append(pending.work)
        elif isinstance(pending.work, ScheduledTimer):
            decisions.timers.append(pending.work)
        else:
            decisions.sub_orchestrations.append(pending.work)

    finished = state.shim is not None and state.shim.done
    if answer.is_done and finished:
        if state.continue_requested:
            decisions.completion = Completion(p.RuntimeStatus.CONTINUED_AS_NEW, state.continued_as_new)
            decisions.events.append(p.continue_as_new(when, state.continued_as_new))
        else:
            result = None if answer.output is None else json.dumps(answer.output)
            decisions.completion = Completion(p.RuntimeStatus.COMPLETED, result)
            decisions.events.append(p.execution_completed(when, p.RuntimeStatus.COMPLETED, result))
    return decisions


def _failed(when: datetime, message: str, custom_status: object) -> Decisions:
    result = json.dumps(message)
    return Decisions(
        events=[p.execution_completed(when, p.RuntimeStatus.FAILED, result)],
        completion=Completion(p.RuntimeStatus.FAILED, result, error=message),
        custom_status=_json_or_none(custom_status),
    )


def _json_or_none(value: object) -> str | None:
    return None if value is None else json.dumps(value)
