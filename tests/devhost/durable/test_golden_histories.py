"""Golden histories: the real SDK's actions and our replayer's decisions, id for id, episode by episode.

Each test states the DTFx history literally (history_builder), asserts the exact action JSON the
SDK emits for it, and asserts the exact history events our replayer decides to append. The next
episode's history is then written from those literal expectations, so SDK and replayer must agree
on every id for the test to get to the end.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
from history_builder import T0, History, decide, run_sdk, summary, ts

from devhost.durable import protocol


def activity(name: str, input_: Any = None) -> dict[str, Any]:
    return {"actionType": 0, "functionName": name, "input": json.dumps(input_)}


def retry_activity(name: str, first_ms: int, attempts: int, input_: Any = None) -> dict[str, Any]:
    return {
        "actionType": 12,
        "compoundActions": [
            {
                "actionType": 1,
                "functionName": name,
                "input": json.dumps(input_),
                "retryOptions": {"firstRetryIntervalInMilliseconds": first_ms, "maxNumberOfAttempts": attempts},
            }
        ],
    }


def timer(fire_at: Any, canceled: bool = False) -> dict[str, Any]:
    return {"actionType": 5, "fireAt": fire_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "isCanceled": canceled}


def stored(value: Any) -> str:
    """An activity/sub-orchestration input as DTFx stores it: the SDK's df_dumps text as a JSON string."""
    return json.dumps(json.dumps(value))


def running(*actions: dict[str, Any]) -> dict[str, Any]:
    return {"isDone": False, "schemaVersion": 2, "actions": [list(actions)]}


# --- activity chain -------------------------------------------------------------------------------


def chain(ctx: df.DurableOrchestrationContext) -> Any:
    x = yield ctx.call_activity("a", 1)
    y = yield ctx.call_activity("b", x)
    return [x, y]


def test_activity_chain() -> None:
    h = History("chain")
    assert run_sdk(chain, h) == running(activity("a", 1))
    assert summary(decide(chain, h)) == [("TaskScheduled", 0, "a", stored(1))]

    h.scheduled(0, "a", "1").next_episode().completed(0, 2)
    assert run_sdk(chain, h) == running(activity("a", 1), activity("b", 2))
    assert summary(decide(chain, h)) == [("TaskScheduled", 1, "b", stored(2))]

    h.scheduled(1, "b", "2").next_episode().completed(1, 3)
    assert run_sdk(chain, h) == {
        "isDone": True,
        "schemaVersion": 2,
        "actions": [[activity("a", 1), activity("b", 2)]],
        "output": [2, 3],
    }
    decisions = decide(chain, h)
    assert summary(decisions) == [("ExecutionCompleted", "Completed", "[2, 3]")]
    assert decisions.completion == protocol_completion("Completed", "[2, 3]")


def protocol_completion(status: str, result: str | None) -> Any:
    from devhost.durable.replayer import Completion

    return Completion(status, result)


# --- fan-out / fan-in -----------------------------------------------------------------------------


def fan(ctx: df.DurableOrchestrationContext) -> Any:
    results = yield ctx.task_all([ctx.call_activity("work", i) for i in range(3)])
    total = yield ctx.call_activity("sum", results)
    return total


def test_fan_out_fan_in_completes_in_any_order() -> None:
    h = History("fan")
    fan_out = {"actionType": 12, "compoundActions": [activity("work", i) for i in range(3)]}
    assert run_sdk(fan, h) == running(fan_out)
    assert summary(decide(fan, h)) == [
        ("TaskScheduled", 0, "work", stored(0)),
        ("TaskScheduled", 1, "work", stored(1)),
        ("TaskScheduled", 2, "work", stored(2)),
    ]

    h.scheduled(0, "work", "0").scheduled(1, "work", "1").scheduled(2, "work", "2")
    h.next_episode().completed(2, 20).completed(0, 0)
    assert run_sdk(fan, h) == running(fan_out)
    assert summary(decide(fan, h)) == []

    h.next_episode().completed(1, 10)
    assert run_sdk(fan, h) == running(fan_out, activity("sum", [0, 10, 20]))
    assert summary(decide(fan, h)) == [("TaskScheduled", 3, "sum", stored([0, 10, 20]))]


# --- retries --------------------------------------------------------------------------------------


def parallel_retries(ctx: df.DurableOrchestrationContext) -> Any:
    options = df.RetryOptions(1000, 3)
    return (yield ctx.task_all([ctx.call_activity_with_retry("flaky", options, i) for i in range(3)]))


def test_parallel_retries_allocate_timer_and_attempt_ids_in_history_order() -> None:
    h = History("parallel_retries")
    fan_out = {"actionType": 12, "compoundActions": [retry_activity("flaky", 1000, 3, i) for i in range(3)]}
    assert run_sdk(parallel_retries, h) == running(fan_out)
    assert [r[:3] for r in summary(decide(parallel_retries, h))] == [
        ("TaskScheduled", 0, "flaky"),
        ("TaskScheduled", 1, "flaky"),
        ("TaskScheduled", 2, "flaky"),
    ]

    h.scheduled(0, "flaky", "0").scheduled(1, "flaky", "1").scheduled(2, "flaky", "2")
    failed_at = h.now + timedelta(seconds=5)
    h.next_episode(timedelta(seconds=5)).failed(2, "boom").failed(0, "boom").failed(1, "boom")
    retry_at = failed_at + timedelta(seconds=1)
    assert run_sdk(parallel_retries, h) == running(fan_out)
    # One retry timer per failure, allocated in the order the failures appear in the history.
    assert summary(decide(parallel_retries, h)) == [
        ("TimerCreated", 3, ts(retry_at)),
        ("TimerCreated", 4, ts(retry_at)),
        ("TimerCreated", 5, ts(retry_at)),
    ]

    h.timer_created(3, retry_at).timer_created(4, retry_at).timer_created(5, retry_at)
    h.next_episode(timedelta(seconds=1)).timer_fired(4, retry_at).timer_fired(3, retry_at).timer_fired(5, retry_at)
    assert run_sdk(parallel_retries, h) == running(fan_out)
    # Timer 4 belongs to input 0, timer 3 to input 2, timer 5 to input 1: re-attempts follow firing order.
    assert summary(decide(parallel_retries, h)) == [
        ("TaskScheduled", 6, "flaky", stored(0)),
        ("TaskScheduled", 7, "flaky", stored(2)),
        ("TaskScheduled", 8, "flaky", stored(1)),
    ]

    h.scheduled(6, "flaky", "0").scheduled(7, "flaky", "2").scheduled(8, "flaky", "1")
    h.next_episode().completed(7, "r2").completed(8, "r1").completed(6, "r0")
    state = run_sdk(parallel_retries, h)
    assert state["isDone"] is True
    assert state["output"] == ["r0", "r1", "r2"]
    assert summary(decide(parallel_retries, h)) == [("ExecutionCompleted", "Completed", '["r0", "r1", "r2"]')]


def exhausted(ctx: df.DurableOrchestrationContext) -> Any:
    try:
        yield ctx.call_activity_with_retry("bad", df.RetryOptions(500, 2), None)
    except Exception as exc:
        caught = str(exc)
    else:
        caught = ""
    yield ctx.call_activity("after", caught)
    return caught


def test_retry_exhaustion_schedules_the_back_compat_timer_then_raises() -> None:
    h = History("exhausted")
    assert run_sdk(exhausted, h) == running(retry_activity("bad", 500, 2))
    assert summary(decide(exhausted, h)) == [("TaskScheduled", 0, "bad", stored(None))]

    h.scheduled(0, "bad", "null").next_episode().failed(0, "first", "d1")
    retry_at = h.now + timedelta(milliseconds=500)
    assert summary(decide(exhausted, h)) == [("TimerCreated", 1, ts(retry_at))]

    h.timer_created(1, retry_at).next_episode(timedelta(milliseconds=500)).timer_fired(1, retry_at)
    assert summary(decide(exhausted, h)) == [("TaskScheduled", 2, "bad", stored(None))]

    h.scheduled(2, "bad", "null").next_episode(timedelta(seconds=3)).failed(2, "second", "d2")
    # After the last attempt DTFx still awaits a timer, due immediately ("Dummy timer for back-compat").
    assert run_sdk(exhausted, h) == running(retry_activity("bad", 500, 2))
    assert summary(decide(exhausted, h)) == [("TimerCreated", 3, ts(h.now))]

    dummy_at = h.now
    h.timer_created(3, dummy_at).next_episode().timer_fired(3, dummy_at)
    caught = "second \n d2"
    assert run_sdk(exhausted, h) == running(retry_activity("bad", 500, 2), activity("after", caught))
    assert summary(decide(exhausted, h)) == [("TaskScheduled", 4, "after", stored(caught))]


# --- timer vs external event ----------------------------------------------------------------------


def race(ctx: df.DurableOrchestrationContext) -> Any:
    deadline = ctx.current_utc_datetime + timedelta(minutes=15)
    timeout = ctx.create_timer(deadline)
    approval = ctx.wait_for_external_event("Approve")
    winner = yield ctx.task_any([approval, timeout])
    if winner == approval:
        timeout.cancel()
        return (yield ctx.call_activity("approve", approval.result))
    return "timeout"


WAIT_APPROVE = {"actionType": 6, "externalEventName": "Approve", "reason": "ExternalEvent"}
DEADLINE = T0 + timedelta(minutes=15)


def test_event_wins_the_race_and_the_timer_is_cancelled() -> None:
    h = History("race")
    assert run_sdk(race, h) == running({"actionType": 11, "compoundActions": [WAIT_APPROVE, timer(DEADLINE)]})
    assert summary(decide(race, h)) == [("TimerCreated", 0, ts(DEADLINE))]

    # raise_event(..., {"ok": True}) reaches the orchestrator as a str: the body was a string literal.
    h.timer_created(0, DEADLINE).next_episode(timedelta(minutes=3)).raised("Approve", json.dumps('{"ok": true}'))
    cancelled = {"actionType": 11, "compoundActions": [WAIT_APPROVE, timer(DEADLINE, canceled=True)]}
    assert run_sdk(race, h) == running(cancelled, activity("approve", '{"ok": true}'))
    assert summary(decide(race, h)) == [("TaskScheduled", 1, "approve", stored('{"ok": true}'))]

    # The cancelled timer still fires later; both sides ignore it.
    h.scheduled(1, "approve", json.dumps('{"ok": true}')).next_episode(timedelta(minutes=13))
    h.timer_fired(0, DEADLINE)
    assert run_sdk(race, h) == running(cancelled, activity("approve", '{"ok": true}'))
    assert summary(decide(race, h)) == []

    h.next_episode().completed(1, "approved")
    assert run_sdk(race, h)["output"] == "approved"
    assert summary(decide(race, h)) == [("ExecutionCompleted", "Completed", '"approved"')]


def test_timer_wins_the_race() -> None:
    h = History("race")
    h.timer_created(0, DEADLINE).next_episode(timedelta(minutes=15)).timer_fired(0, DEADLINE)
    assert run_sdk(race, h)["output"] == "timeout"
    assert summary(decide(race, h)) == [("ExecutionCompleted", "Completed", '"timeout"')]


def waits_after_work(ctx: df.DurableOrchestrationContext) -> Any:
    yield ctx.call_activity("prepare")
    first = yield ctx.wait_for_external_event("Go")
    second = yield ctx.wait_for_external_event("Go")
    return [first, second]


def test_events_raised_before_anyone_waits_are_buffered_per_name() -> None:
    h = History("waits_after_work")
    h.scheduled(0, "prepare", "null").next_episode().raised("Go", "1").raised("Other", "0")
    assert summary(decide(waits_after_work, h)) == []
    h.next_episode().completed(0, None)
    assert summary(decide(waits_after_work, h)) == []
    h.next_episode().raised("Go", "2")
    # SDK 1.7 quirk: a buffered ("deferred") event is never consumed, so the second wait for the same
    # name sees it again. The extension's buffer is a FIFO that is consumed; only completion timing
    # must agree, and it does: both finish when the second event arrives.
    assert run_sdk(waits_after_work, h)["output"] == [1, 1]
    assert summary(decide(waits_after_work, h)) == [("ExecutionCompleted", "Completed", "[1, 1]")]


# --- long timers ----------------------------------------------------------------------------------


def long_sleep(ctx: df.DurableOrchestrationContext) -> Any:
    yield ctx.create_timer(ctx.current_utc_datetime + timedelta(days=7))
    return "awake"


def test_long_timer_is_split_into_intervals() -> None:
    h = History("long_sleep")
    first = T0 + timedelta(days=3)
    assert run_sdk(long_sleep, h) == running({"actionType": 12, "compoundActions": [timer(first)]})
    assert summary(decide(long_sleep, h)) == [("TimerCreated", 0, ts(first))]

    h.timer_created(0, first).next_episode(timedelta(days=3)).timer_fired(0, first)
    final = T0 + timedelta(days=7)
    assert run_sdk(long_sleep, h) == running({"actionType": 12, "compoundActions": [timer(first)]}, timer(final))
    assert summary(decide(long_sleep, h)) == [("TimerCreated", 1, ts(final))]

    h.timer_created(1, final).next_episode(timedelta(days=4)).timer_fired(1, final)
    assert summary(decide(long_sleep, h)) == [("ExecutionCompleted", "Completed", '"awake"')]


# --- sub-orchestrations ---------------------------------------------------------------------------


def parent(ctx: df.DurableOrchestrationContext) -> Any:
    first = yield ctx.call_sub_orchestrator("child", {"n": 1})
    second = yield ctx.call_sub_orchestrator("child", 2, instance_id="fixed-child")
    return [first, second]


def sub_action(input_: Any, instance_id: str | None) -> dict[str, Any]:
    return {
        "actionType": 2,
        "functionName": "child",
        "input": json.dumps(input_),
        "instanceId": instance_id,
        "version": None,
    }


def test_sub_orchestrations_and_their_failure() -> None:
    h = History("parent")
    assert run_sdk(parent, h) == running(sub_action({"n": 1}, None))
    assert summary(decide(parent, h)) == [("SubOrchestrationInstanceCreated", 0, "child", "inst-1:0")]

    h.sub_created(0, "child", "inst-1:0", '{"n": 1}').next_episode().sub_completed(0, 5)
    assert run_sdk(parent, h) == running(sub_action({"n": 1}, None), sub_action(2, "fixed-child"))
    assert summary(decide(parent, h)) == [("SubOrchestrationInstanceCreated", 1, "child", "fixed-child")]

    h.sub_created(1, "child", "fixed-child", "2").next_episode().sub_failed(1, "child broke", "details")
    state = run_sdk(parent, h)
    assert state["isDone"] is False
    assert state["error"] == "child broke \n details"
    decisions = decide(parent, h)
    expected = "Orchestrator function 'parent' failed: child broke \n details"
    assert summary(decisions) == [("ExecutionCompleted", "Failed", json.dumps(expected))]
    assert decisions.completion is not None and decisions.completion.error == expected


# --- continue-as-new ------------------------------------------------------------------------------


def counter(ctx: df.DurableOrchestrationContext) -> Any:
    n = ctx.get_input()
    yield ctx.call_activity("tick", n)
    if n < 1:
        ctx.continue_as_new(n + 1)
        return None
    return n


def test_continue_as_new_ends_the_execution_with_the_new_input() -> None:
    h = History("counter", input=json.dumps("0"))
    h.scheduled(0, "tick", "0").next_episode().completed(0, None)
    assert run_sdk(counter, h) == {
        "isDone": True,
        "schemaVersion": 2,
        "actions": [[activity("tick", 0), {"actionType": 4, "input": "1"}]],
    }
    decisions = decide(counter, h)
    assert summary(decisions) == [("ContinueAsNew", json.dumps("1"))]
    assert decisions.completion is not None and decisions.completion.status == "ContinuedAsNew"

    fresh = History("counter", input=json.dumps("1"), start=h.now)
    assert summary(decide(counter, fresh)) == [("TaskScheduled", 0, "tick", stored(1))]


# --- non-determinism ------------------------------------------------------------------------------

_choice = {"name": "a"}


def fickle(ctx: df.DurableOrchestrationContext) -> Any:
    return (yield ctx.call_activity(_choice["name"]))


def test_changed_activity_name_is_non_deterministic() -> None:
    h = History("fickle")
    h.scheduled(0, "a", "null").next_episode().completed(0, 1)
    _choice["name"] = "b"
    try:
        decisions = decide(fickle, h)
    finally:
        _choice["name"] = "a"
    assert decisions.completion is not None and decisions.completion.status == "Failed"
    assert decisions.completion.error is not None
    assert decisions.completion.error.startswith("Non-Deterministic workflow detected: ")
    assert "sequence ID 0 and name 'a'" in decisions.completion.error
    assert "named 'b'" in decisions.completion.error


def sleeper(ctx: df.DurableOrchestrationContext) -> Any:
    yield ctx.create_timer(ctx.current_utc_datetime + timedelta(hours=1))
    return None


def test_history_task_the_code_no_longer_schedules_is_non_deterministic() -> None:
    h = History("sleeper")
    h.scheduled(0, "a", "null").next_episode().completed(0, 1)
    decisions = decide(sleeper, h)
    assert decisions.completion is not None and decisions.completion.status == "Failed"
    assert "instead scheduled a timer" in str(decisions.completion.error)


# --- failures and custom status -------------------------------------------------------------------


def explodes(ctx: df.DurableOrchestrationContext) -> Any:
    ctx.set_custom_status({"stage": "before"})
    yield ctx.call_activity("a")
    raise ValueError("kaput")


def test_orchestrator_exception_fails_with_the_extension_message() -> None:
    h = History("explodes")
    assert decide(explodes, h).custom_status == json.dumps({"stage": "before"})
    h.scheduled(0, "a", "null").next_episode().completed(0, None)
    state = run_sdk(explodes, h)
    assert state["raised"] == "kaput"
    assert state["error"] == "kaput"
    decisions = decide(explodes, h)
    assert summary(decisions) == [
        ("ExecutionCompleted", "Failed", json.dumps("Orchestrator function 'explodes' failed: kaput"))
    ]
    assert decisions.custom_status == json.dumps({"stage": "before"})


def test_parse_failure_without_state_keeps_the_message() -> None:
    failure = protocol.parse_failure("plain error")
    assert failure == protocol.OrchestratorFailure("plain error", None)
