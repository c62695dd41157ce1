"""Hand-written DTFx histories for golden tests, plus helpers to run the real SDK and our replayer on them.

The builder writes the events as plain dicts itself (not through devhost.durable.protocol), so a
golden test compares our replayer against an independent statement of what DTFx writes.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Generator
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.durable_functions.orchestrator import Orchestrator

from devhost.durable import protocol, replayer

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

OrchestratorFn = Callable[[Any], Generator[Any, Any, Any]]


def ts(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond:06d}0Z"


class History:
    """A DTFx history, built episode by episode: `History("orch")` opens the first episode."""

    def __init__(
        self, name: str = "orch", *, instance_id: str = "inst-1", input: str | None = None, start: datetime = T0
    ) -> None:
        self.name = name
        self.instance_id = instance_id
        self.input = input
        self.now = start
        self.events: list[dict[str, Any]] = []
        self._add(12)
        self._add(
            0,
            OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": "exec-1"},
            ParentInstance=None,
            Name=name,
            Version="",
            Input=input,
            Tags=None,
        )

    def _add(self, event_type: int, event_id: int = -1, **fields: Any) -> History:
        self.events.append(
            {"EventType": event_type, "EventId": event_id, "IsPlayed": False, "Timestamp": ts(self.now), **fields}
        )
        return self

    # episode boundaries
    def next_episode(self, after: timedelta = timedelta(seconds=1)) -> History:
        """Close the current episode (OrchestratorCompleted) and open the next one `after` later."""
        self._add(13)
        for event in self.events:
            event["IsPlayed"] = True
        self.now += after
        return self._add(12)

    # decisions (written by the host at the end of an episode)
    def scheduled(self, task_id: int, name: str, input: str | None = None) -> History:
        return self._add(4, task_id, Name=name, Version="", Input=input)

    def timer_created(self, timer_id: int, fire_at: datetime) -> History:
        return self._add(10, timer_id, FireAt=ts(fire_at))

    def sub_created(self, task_id: int, name: str, instance_id: str, input: str | None = None) -> History:
        return self._add(7, task_id, Name=name, Version="", InstanceId=instance_id, Input=input)

    # messages (arrive in a later episode)
    def completed(self, task_id: int, result: Any) -> History:
        return self._add(5, TaskScheduledId=task_id, Result=json.dumps(result))

    def failed(self, task_id: int, reason: str, details: str = "trace") -> History:
        return self._add(6, TaskScheduledId=task_id, Reason=reason, Details=details)

    def timer_fired(self, timer_id: int, fire_at: datetime) -> History:
        return self._add(11, TimerId=timer_id, FireAt=ts(fire_at))

    def raised(self, name: str, input_text: str) -> History:
        return self._add(15, Name=name, Input=input_text)

    def sub_completed(self, task_id: int, result: Any) -> History:
        return self._add(8, TaskScheduledId=task_id, Result=json.dumps(result))

    def sub_failed(self, task_id: int, reason: str, details: str = "") -> History:
        return self._add(9, TaskScheduledId=task_id, Reason=reason, Details=details)

    def context(self) -> str:
        played = any(e["IsPlayed"] for e in self.events)
        return protocol.context_json(
            self.events,
            instance_id=self.instance_id,
            input_text=self.input,
            parent_instance_id=None,
            is_replaying=played,
        )


def _call(fn: OrchestratorFn, history: History) -> str:
    # The worker does not escalate warnings (the SDK warns on events nobody waits for yet).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result: str = Orchestrator.create(fn)(history.context())
    return result


def run_sdk(fn: OrchestratorFn, history: History) -> dict[str, Any]:
    """The real SDK's answer for `history`: the OrchestratorState dict (or the parsed $OutOfProcData$)."""
    try:
        result: dict[str, Any] = json.loads(_call(fn, history))
    except Exception as exc:
        message = str(exc)
        marker = "$OutOfProcData$:"
        assert marker in message, message
        failure: dict[str, Any] = json.loads(message[message.index(marker) + len(marker) :])
        failure["raised"] = message[: message.index(marker)].rstrip()
        return failure
    return result


def answer_of(fn: OrchestratorFn, history: History) -> protocol.OrchestratorState | protocol.OrchestratorFailure:
    try:
        return protocol.OrchestratorState.from_json(_call(fn, history))
    except Exception as exc:
        return protocol.parse_failure(str(exc))


def decide(fn: OrchestratorFn, history: History) -> replayer.Decisions:
    """Run the SDK on `history`, then our replayer on the SDK's answer."""
    return replayer.replay(history.events, answer_of(fn, history))


def summary(decisions: replayer.Decisions) -> list[tuple[Any, ...]]:
    """Decision events as short tuples: ("TaskScheduled", id, name), ("TimerCreated", id, fireAt), ..."""
    rows: list[tuple[Any, ...]] = []
    for event in decisions.events:
        kind = event["EventType"]
        if kind == 4:
            rows.append(("TaskScheduled", event["EventId"], event["Name"], event["Input"]))
        elif kind == 10:
            rows.append(("TimerCreated", event["EventId"], event["FireAt"]))
        elif kind == 7:
            rows.append(("SubOrchestrationInstanceCreated", event["EventId"], event["Name"], event["InstanceId"]))
        elif kind == 1:
            rows.append(("ExecutionCompleted", event["OrchestrationStatus"], event["Result"]))
        elif kind == 16:
            rows.append(("ContinueAsNew", event["Result"]))
        else:
            rows.append((kind,))
    return rows
