"""The engine end to end with the MemoryStore, the real SDK and virtual time (through DurableHarness)."""

from __future__ import annotations

import json
from datetime import timedelta
from types import ModuleType

import pytest

from devhost.durable.engine import Chaos, InstanceGoneError, InstanceNotFoundError, UnknownOrchestratorError
from devhost.durable.harness import DurableHarness
from devhost.durable.store import InstanceExistsError


def kinds(history: list[dict[str, object]]) -> list[int]:
    return [int(str(e["EventType"])) for e in history]


async def test_event_before_deadline_charges_and_the_payload_arrives_as_str(sample: ModuleType) -> None:
    async with DurableHarness(sample.build_app()) as durable:
        instance_id = await durable.start("approval", {"id": 7})
        await durable.advance_and_settle(timedelta(minutes=5))
        status = await durable.status(instance_id)
        assert status is not None and status["runtimeStatus"] == "Running"
        assert status["customStatus"] == "waiting"
        await durable.raise_event(instance_id, "Approved", {"ref": "pay_1"})
        done = await durable.wait(instance_id)
        assert done["runtimeStatus"] == "Completed"
        assert done["output"] == {"receipt": "r-7", "event_type": "str"}
        assert done["customStatus"] == "charged"
        assert sample.CALLS == [("charge", {"booking": {"id": 7}, "event": '{"ref": "pay_1"}'})]
        history = await durable.history(instance_id)
        assert kinds(history)[:5] == [12, 0, 10, 13, 12]
        assert kinds(history)[-3:] == [5, 1, 13]


async def test_deadline_passes_after_fifteen_virtual_minutes(sample: ModuleType) -> None:
    async with DurableHarness(sample.build_app()) as durable:
        instance_id = await durable.start("approval", {"id": 8})
        await durable.advance_and_settle(timedelta(minutes=14, seconds=59))
        assert (await durable.status(instance_id) or {})["runtimeStatus"] == "Running"
        await durable.advance_and_settle(timedelta(seconds=1))
        done = await durable.wait(instance_id)
        assert done["output"] == "expired"
        assert sample.CALLS == []


async def test_retries_recover_and_ids_match_the_history(sample: ModuleType) -> None:
    sample.FAILURES.update({0: 1, 2: 1})
    async with DurableHarness(sample.build_app()) as durable:
        instance_id = await durable.start("fan", 3)
        await durable.advance_and_settle(timedelta(seconds=1), steps=3)
        done = await durable.wait(instance_id)
        assert done["runtimeStatus"] == "Completed"
        assert done["output"] == 0 + 10 + 20
        history = await durable.history(instance_id)
        scheduled = [(e["EventId"], json.loads(json.loads(e["Input"]))) for e in history if e["EventType"] == 4]
        timers = [e["EventId"] for e in history if e["EventType"] == 10]
        assert scheduled[:3] == [(0, 0), (1, 1), (2, 2)]
        assert len(timers) == 2 and set(timers) == {3, 4}
        assert sorted(scheduled[3:]) == [(5, 0), (6, 2)] or sorted(scheduled[3:]) == [(5, 2), (6, 0)]


async def test_retries_exhausted_fail_the_orchestration_with_the_extension_message(sample: ModuleType) -> None:
    sample.FAILURES.update({0: 5})
    async with DurableHarness(sample.build_app()) as durable:
        instance_id = await durable.start("fan", 1)
        await durable.advance_and_settle(timedelta(seconds=1), steps=5)
        done = await durable.wait(instance_id)
        assert done["runtimeStatus"] == "Failed"
        assert done["output"].startswith("Orchestrator function 'fan' failed: Activity function 'flaky' failed: ")
        assert "RuntimeError: flaky 0 failed" in done["output"]
        assert sample.CALLS == [("flaky", 0)] * 3
        history = await durable.history(instance_id)
        assert [e["EventId"] for e in history if e["EventType"] in (4, 10)] == [0, 1, 2, 3, 4, 5]


async def test_sub_orchestration_and_continue_as_new(sample: ModuleType) -> None:
    async with DurableHarness(sample.build_app()) as durable:
        parent_id = await durable.start("parent", 21, instance_id="p1")
        done = await durable.wait(parent_id)
        assert done["output"] == {"child": 42, "parent_of": "p1"}
        child = await durable.status("p1:0")
        assert child is not None and child["runtimeStatus"] == "Completed" and child["output"] == 42

        looper = await durable.start("looper", 0)
        done = await durable.wait(looper)
        assert done["output"] == 3
        assert [c for c in sample.CALLS if c[0] == "double"][-4:] == [("double", n) for n in range(4)]
        history = await durable.history(looper)
        assert kinds(history)[:2] == [12, 0] and json.loads(history[1]["Input"]) == "3"


async def test_orchestrator_exception_and_client_errors(sample: ModuleType) -> None:
    async with DurableHarness(sample.build_app()) as durable:
        broken = await durable.start("broken")
        done = await durable.wait(broken)
        assert done["runtimeStatus"] == "Failed"
        assert done["output"] == "Orchestrator function 'broken' failed: kaput"
        with pytest.raises(UnknownOrchestratorError, match="doesn't exist"):
            await durable.start("nope")
        with pytest.raises(InstanceGoneError):
            await durable.raise_event(broken, "x")
        with pytest.raises(InstanceNotFoundError):
            await durable.raise_event("missing", "x")
        waiting = await durable.start("approval", {"id": 1}, instance_id="fixed")
        with pytest.raises(InstanceExistsError):
            await durable.start("approval", {"id": 1}, instance_id="fixed")
        await durable.terminate(waiting, "stop it")
        done = await durable.wait(waiting)
        assert (done["runtimeStatus"], done["output"]) == ("Terminated", "stop it")
        # A terminal instance id can be reused.
        assert await durable.start("approval", {"id": 2}, instance_id="fixed") == "fixed"


async def test_suspended_instances_hold_their_events_until_resumed(sample: ModuleType) -> None:
    async with DurableHarness(sample.build_app()) as durable:
        instance_id = await durable.start("approval", {"id": 3})
        await durable.settle()
        await durable.engine.suspend(instance_id, "hold")
        await durable.wait(instance_id, {"Suspended"})
        await durable.raise_event(instance_id, "Approved", "ok")
        await durable.settle()
        assert (await durable.status(instance_id) or {})["runtimeStatus"] == "Suspended"
        await durable.engine.resume(instance_id, "go")
        done = await durable.wait(instance_id)
        assert done["output"] == {"receipt": "r-3", "event_type": "str"}


async def test_duplicate_activity_results_are_dropped(sample: ModuleType) -> None:
    async with DurableHarness(sample.build_app()) as durable:
        durable.engine.chaos = Chaos(duplicate_activity_results=True)
        instance_id = await durable.start("parent", 1)
        done = await durable.wait(instance_id)
        assert done["output"]["child"] == 2
        child_history = await durable.history(f"{instance_id}:0")
        assert kinds(child_history).count(5) == 1


async def test_activity_killed_mid_run_is_redelivered(sample: ModuleType) -> None:
    async with DurableHarness(sample.build_app()) as durable:
        durable.engine.activity_lease = timedelta(milliseconds=200)
        durable.engine.chaos = Chaos(crash_activity=lambda name, attempt: name == "double" and attempt == 1)
        instance_id = await durable.start("child", 4)
        done = await durable.wait(instance_id)
        assert done["output"] == 8
        assert sample.CALLS == [("double", 4), ("double", 4)]
