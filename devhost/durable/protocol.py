"""The JSON the Durable extension exchanges with the Python SDK, built and parsed as the host does.

- History events: DTFx `HistoryEvent` objects as Newtonsoft serializes them (PascalCase fields,
  `EventType` numbers from `DurableTask.Core.History.EventType`, .NET timestamps with 7 fractional
  digits). The SDK reads them in `models/history/HistoryEvent.py`.
- The orchestration context JSON the extension hands to the orchestrator function (§3.2).
- `OrchestratorState`, the orchestrator's answer, including the `$OutOfProcData$` failure format (§3.3).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any

Event = dict[str, Any]

# Azure Storage provider values (`maximumShortTimerDuration`, `longRunningTimerIntervalDuration`).
MAX_SHORT_TIMER = timedelta(days=6)
LONG_TIMER_INTERVAL = timedelta(days=3)
# SchemaVersion.V2 (legacy field) and SchemaVersion.V4 as the extension sends them; the SDK clamps
# the latter to its own maximum (V3).
UPPER_SCHEMA_VERSION = 1
UPPER_SCHEMA_VERSION_NEW = 3

_OUT_OF_PROC_MARKER = "$OutOfProcData$:"


class EventType(IntEnum):
    """`DurableTask.Core.History.EventType` (the numbers the SDK's HistoryEventType mirrors)."""

    EXECUTION_STARTED = 0
    EXECUTION_COMPLETED = 1
    EXECUTION_FAILED = 2
    EXECUTION_TERMINATED = 3
    TASK_SCHEDULED = 4
    TASK_COMPLETED = 5
    TASK_FAILED = 6
    SUB_ORCHESTRATION_CREATED = 7
    SUB_ORCHESTRATION_COMPLETED = 8
    SUB_ORCHESTRATION_FAILED = 9
    TIMER_CREATED = 10
    TIMER_FIRED = 11
    ORCHESTRATOR_STARTED = 12
    ORCHESTRATOR_COMPLETED = 13
    EVENT_SENT = 14
    EVENT_RAISED = 15
    CONTINUE_AS_NEW = 16
    GENERIC_EVENT = 17
    HISTORY_STATE = 18
    EXECUTION_SUSPENDED = 19
    EXECUTION_RESUMED = 20


class RuntimeStatus:
    """`OrchestrationRuntimeStatus` names as the status API reports them."""

    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    CONTINUED_AS_NEW = "ContinuedAsNew"
    FAILED = "Failed"
    TERMINATED = "Terminated"
    SUSPENDED = "Suspended"
    CANCELED = "Canceled"

    TERMINAL = frozenset({COMPLETED, FAILED, TERMINATED, CANCELED})


# --- time formats ---------------------------------------------------------------------------------


def format_timestamp(when: datetime) -> str:
    """A UTC instant as Newtonsoft writes a DateTime: `2026-01-01T00:00:00.1234560Z`."""
    when = when.astimezone(UTC)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond * 10:07d}Z"


_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?")


def parse_timestamp(text: str) -> datetime:
    """Parse a .NET (7 digits) or SDK (`%Y-%m-%dT%H:%M:%S.%fZ`) timestamp into an aware UTC datetime."""
    match = _TIMESTAMP.fullmatch(text.strip())
    if not match:
        raise ValueError(f"not a timestamp: {text!r}")
    base, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    parsed = datetime.fromisoformat(base).replace(microsecond=micro)
    if zone in (None, "Z"):
        return parsed.replace(tzinfo=UTC)
    return datetime.fromisoformat(f"{base}{zone}").replace(microsecond=micro).astimezone(UTC)


def format_timespan(span: timedelta) -> str:
    """A .NET TimeSpan in the constant ("c") format, e.g. `6.00:00:00`."""
    total = int(span.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    return f"{days}.{text}" if days else text


def format_status_time(when: datetime) -> str:
    """Status API times: .NET format "s" plus "Z" (whole seconds)."""
    return f"{when.astimezone(UTC):%Y-%m-%dT%H:%M:%S}Z"


# --- history events -------------------------------------------------------------------------------


def _event(event_type: EventType, when: datetime, event_id: int = -1) -> Event:
    return {"EventType": int(event_type), "EventId": event_id, "IsPlayed": False, "Timestamp": format_timestamp(when)}


def _with(event: Event, **fields: Any) -> Event:
    event.update(fields)
    return event


def orchestrator_started(when: datetime) -> Event:
    """OrchestratorStarted: opens an episode; its Timestamp is the orchestration's `current_utc_datetime`."""
    return _event(EventType.ORCHESTRATOR_STARTED, when)


def orchestrator_completed(when: datetime) -> Event:
    """OrchestratorCompleted: closes an episode."""
    return _event(EventType.ORCHESTRATOR_COMPLETED, when)


@dataclass(frozen=True)
class ParentInstance:
    """Where a sub-orchestration reports back to (DTFx `ParentInstance`)."""

    name: str
    instance_id: str
    execution_id: str
    task_id: int

    def to_json(self) -> dict[str, Any]:
        return {
            "Name": self.name,
            "Version": "",
            "TaskScheduleId": self.task_id,
            "OrchestrationInstance": {"InstanceId": self.instance_id, "ExecutionId": self.execution_id},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ParentInstance | None:
        if not data:
            return None
        inst = data["OrchestrationInstance"]
        return cls(data["Name"], inst["InstanceId"], inst["ExecutionId"], int(data["TaskScheduleId"]))


def execution_started(
    when: datetime,
    *,
    instance_id: str,
    execution_id: str,
    name: str,
    input_text: str | None,
    version: str = "",
    parent: ParentInstance | None = None,
) -> Event:
    """ExecutionStarted; the SDK requires `Version` (it reads `event.Version`)."""
    return _with(
        _event(EventType.EXECUTION_STARTED, when),
        OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id},
        ParentInstance=parent.to_json() if parent else None,
        Name=name,
        Version=version,
        Input=input_text,
        Tags=None,
        ScheduledStartTime=None,
        Generation=0,
    )


def execution_completed(when: datetime, status: str, result: str | None) -> Event:
    """ExecutionCompleted with the final OrchestrationStatus and Result text."""
    return _with(_event(EventType.EXECUTION_COMPLETED, when), OrchestrationStatus=status, Result=result)


def execution_terminated(when: datetime, reason: str | None) -> Event:
    """ExecutionTerminated (a terminate request as it lands in history)."""
    return _with(_event(EventType.EXECUTION_TERMINATED, when), Input=reason)


def execution_suspended(when: datetime, reason: str | None) -> Event:
    """ExecutionSuspended."""
    return _with(_event(EventType.EXECUTION_SUSPENDED, when), Reason=reason)


def execution_resumed(when: datetime, reason: str | None) -> Event:
    """ExecutionResumed."""
    return _with(_event(EventType.EXECUTION_RESUMED, when), Reason=reason)


def continue_as_new(when: datetime, input_text: str | None) -> Event:
    """ContinueAsNew: how DTFx closes an execution that continued as new (Result = the new input)."""
    return _with(_event(EventType.CONTINUE_AS_NEW, when), Result=input_text)


def task_scheduled(when: datetime, task_id: int, name: str, input_text: str | None, version: str = "") -> Event:
    """TaskScheduled: an activity call with sequence number `task_id`."""
    return _with(_event(EventType.TASK_SCHEDULED, when, task_id), Name=name, Version=version, Input=input_text)


def task_completed(when: datetime, task_id: int, result: str | None) -> Event:
    """TaskCompleted: `Result` is the activity's JSON output text."""
    return _with(_event(EventType.TASK_COMPLETED, when), TaskScheduledId=task_id, Result=result)


def task_failed(when: datetime, task_id: int, reason: str, details: str | None) -> Event:
    """TaskFailed: the SDK raises `Exception(f"{Reason} \\n {Details}")`."""
    return _with(_event(EventType.TASK_FAILED, when), TaskScheduledId=task_id, Reason=reason, Details=details)


def timer_created(when: datetime, timer_id: int, fire_at: datetime) -> Event:
    """TimerCreated."""
    return _with(_event(EventType.TIMER_CREATED, when, timer_id), FireAt=format_timestamp(fire_at))


def timer_fired(when: datetime, timer_id: int, fire_at: datetime) -> Event:
    """TimerFired: completes the timer task `TimerId`."""
    return _with(_event(EventType.TIMER_FIRED, when), TimerId=timer_id, FireAt=format_timestamp(fire_at))


def sub_orchestration_created(
    when: datetime, task_id: int, name: str, instance_id: str, input_text: str | None, version: str = ""
) -> Event:
    """SubOrchestrationInstanceCreated."""
    return _with(
        _event(EventType.SUB_ORCHESTRATION_CREATED, when, task_id),
        Name=name,
        Version=version,
        InstanceId=instance_id,
        Input=input_text,
    )


def sub_orchestration_completed(when: datetime, task_id: int, result: str | None) -> Event:
    """SubOrchestrationInstanceCompleted."""
    return _with(_event(EventType.SUB_ORCHESTRATION_COMPLETED, when), TaskScheduledId=task_id, Result=result)


def sub_orchestration_failed(when: datetime, task_id: int, reason: str, details: str | None) -> Event:
    """SubOrchestrationInstanceFailed."""
    return _with(
        _event(EventType.SUB_ORCHESTRATION_FAILED, when), TaskScheduledId=task_id, Reason=reason, Details=details
    )


def event_raised(when: datetime, name: str, input_text: str | None) -> Event:
    """EventRaised: `Input` is JSON text the SDK `df_loads`."""
    return _with(_event(EventType.EVENT_RAISED, when), Name=name, Input=input_text)


def played(events: list[Event]) -> list[Event]:
    """Copies of `events` marked IsPlayed (events of earlier episodes)."""
    return [{**event, "IsPlayed": True} for event in events]


# --- context JSON ---------------------------------------------------------------------------------


def context_json(
    history: list[Event],
    *,
    instance_id: str,
    input_text: str | None,
    parent_instance_id: str | None,
    is_replaying: bool,
) -> str:
    """The orchestration trigger's value (`OrchestrationContextToString`).

    `input` is the ExecutionStarted input parsed once (`GetInputAsJson`), so a start body that was a
    JSON string literal reaches the SDK as that string.
    """
    return json.dumps(
        {
            "history": history,
            "input": None if input_text is None else json.loads(input_text),
            "instanceId": instance_id,
            "isReplaying": is_replaying,
            "parentInstanceId": parent_instance_id,
            "upperSchemaVersion": UPPER_SCHEMA_VERSION,
            "upperSchemaVersionNew": UPPER_SCHEMA_VERSION_NEW,
            "longRunningTimerIntervalDuration": format_timespan(LONG_TIMER_INTERVAL),
            "maximumShortTimerDuration": format_timespan(MAX_SHORT_TIMER),
            "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
        }
    )


# --- actions (Python -> host) ---------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """`retryOptions` of a -WithRetry action, with DTFx `RetryOptions` defaults for absent fields."""

    first_retry_interval: timedelta
    max_attempts: int
    backoff_coefficient: float = 1.0
    max_retry_interval: timedelta | None = None
    retry_timeout: timedelta | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RetryPolicy:
        def ms(key: str) -> timedelta | None:
            value = data.get(key)
            return None if value is None else timedelta(milliseconds=float(value))

        first = ms("firstRetryIntervalInMilliseconds")
        if first is None:
            raise ProtocolError("retryOptions without firstRetryIntervalInMilliseconds")
        return cls(
            first_retry_interval=first,
            max_attempts=int(data.get("maxNumberOfAttempts", 1)),
            backoff_coefficient=float(data.get("backoffCoefficient", 1.0)),
            max_retry_interval=ms("maxRetryIntervalInMilliseconds"),
            retry_timeout=ms("retryTimeoutInMilliseconds"),
        )


@dataclass(frozen=True)
class CallActivity:
    """actionType 0 / 1."""

    name: str
    input: str | None
    retry: RetryPolicy | None = None


@dataclass(frozen=True)
class CallSubOrchestrator:
    """actionType 2 / 3."""

    name: str
    input: str | None
    instance_id: str | None
    version: str | None
    retry: RetryPolicy | None = None


@dataclass(frozen=True)
class CreateTimer:
    """actionType 5."""

    fire_at: datetime
    canceled: bool


@dataclass(frozen=True)
class WaitForExternalEvent:
    """actionType 6."""

    name: str


@dataclass(frozen=True)
class ContinueAsNew:
    """actionType 4."""

    input: str | None


@dataclass(frozen=True)
class WhenAll:
    """actionType 12."""

    children: tuple[Action, ...]


@dataclass(frozen=True)
class WhenAny:
    """actionType 11."""

    children: tuple[Action, ...]


@dataclass(frozen=True)
class Unsupported:
    """An action devhost does not implement (entities, durable HTTP)."""

    action_type: int


Action = (
    CallActivity
    | CallSubOrchestrator
    | CreateTimer
    | WaitForExternalEvent
    | ContinueAsNew
    | WhenAll
    | WhenAny
    | Unsupported
)

_UNSUPPORTED_NAMES = {7: "CallEntity", 8: "CallHttp", 9: "SignalEntity"}


class ProtocolError(ValueError):
    """The orchestrator's answer is not something the extension would accept."""


def unsupported_name(action_type: int) -> str:
    """A readable name for an unsupported actionType."""
    return _UNSUPPORTED_NAMES.get(action_type, f"actionType {action_type}")


def parse_action(data: dict[str, Any]) -> Action:
    """One action object as the SDK's `Action.to_json` writes it."""
    kind = int(data["actionType"])
    retry = RetryPolicy.from_json(data["retryOptions"]) if kind in (1, 3) else None
    simple: dict[int, Callable[[], Action]] = {
        4: lambda: ContinueAsNew(data.get("input")),
        5: lambda: CreateTimer(parse_timestamp(data["fireAt"]), bool(data.get("isCanceled", False))),
        6: lambda: WaitForExternalEvent(data["externalEventName"]),
    }
    if kind in (0, 1):
        return CallActivity(data["functionName"], data.get("input"), retry)
    if kind in (2, 3):
        return CallSubOrchestrator(
            data["functionName"], data.get("input"), data.get("instanceId"), data.get("version"), retry
        )
    if kind in (11, 12):
        children = tuple(parse_action(c) for c in data.get("compoundActions", []))
        return WhenAny(children) if kind == 11 else WhenAll(children)
    return simple[kind]() if kind in simple else Unsupported(kind)


@dataclass
class OrchestratorState:
    """The SDK's `OrchestratorState` JSON, parsed."""

    is_done: bool
    actions: list[Action]
    output: Any = None
    error: str | None = None
    custom_status: Any = None
    raw_actions: list[Any] = field(default_factory=list)

    @classmethod
    def from_json(cls, text: str) -> OrchestratorState:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ProtocolError(f"orchestrator returned {type(data).__name__}, not an OrchestratorState object")
        groups = data.get("actions") or []
        if data.get("schemaVersion") is None and any(len(g) > 0 for g in groups):
            # Replay schema V1 (one list per step) is only produced when the host offers no newer
            # schema; devhost always offers V4, so the SDK never sends it.
            raise ProtocolError("replay schema V1 is not supported by devhost")
        flat = [a for group in groups for a in group]
        return cls(
            is_done=bool(data.get("isDone", False)),
            actions=[parse_action(a) for a in flat],
            output=data.get("output"),
            error=data.get("error"),
            custom_status=data.get("customStatus"),
            raw_actions=flat,
        )


@dataclass(frozen=True)
class OrchestratorFailure:
    """An orchestrator invocation that raised: the error and, when present, the state it carried."""

    error: str
    state: OrchestratorState | None


def parse_failure(message: str) -> OrchestratorFailure:
    """Split `f"{exc}\\n\\n$OutOfProcData$:{state}"` the way `OutOfProcExceptionHelpers` does."""
    index = message.find(_OUT_OF_PROC_MARKER)
    if index < 0:
        return OrchestratorFailure(message, None)
    try:
        state = OrchestratorState.from_json(message[index + len(_OUT_OF_PROC_MARKER) :])
    except (ValueError, KeyError):
        return OrchestratorFailure(message, None)
    return OrchestratorFailure(state.error or message[:index].rstrip("\n"), state)


def failed_output(orchestrator_name: str, error: str) -> str:
    """The Failed instance's output text, as the extension's OrchestrationFailureException words it."""
    return f"Orchestrator function '{orchestrator_name}' failed: {error}"
