"""Issue 3's done-when test: an orchestration waiting 15 virtual minutes survives a devhost restart.

Each host is a HostThread (its own loop, engine, connection pool and HTTP server); the first is
stopped before the second starts on the same database and hub, with virtual time continuing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from durable_http_helpers import serve

from devhost.clock import VirtualClock
from devhost.durable.harness import DurableHttpHarness

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def start_and_restart(elapsed: timedelta) -> tuple[str, datetime]:
    """Start `approval` on a first devhost, let `elapsed` virtual time pass, stop the host."""
    clock = VirtualClock(start=T0)
    with serve(clock) as first:
        durable = DurableHttpHarness(first.url, clock=clock)
        instance_id = durable.start_via("api/start/approval", {"booking": 7})
        durable.wait(instance_id, {"Running"})  # the first episode (timer and wait) is committed
        durable.advance(elapsed)
        assert durable.wait(instance_id, {"Running"})["customStatus"] == "waiting"
    return instance_id, clock.now()


@pytest.mark.parametrize("via", ["client", "api"])
def test_waits_15_virtual_minutes_survives_a_restart_and_completes_on_the_event(durable_hub: str, via: str) -> None:
    instance_id, now = start_and_restart(timedelta(minutes=5))

    clock = VirtualClock(start=now)
    with serve(clock) as second:
        durable = DurableHttpHarness(second.url, clock=clock)
        status = durable.status(instance_id, history=True)
        assert status is not None
        assert (status["runtimeStatus"], status["customStatus"]) == ("Running", "waiting")
        timers = [e for e in status["historyEvents"] if e["EventType"] == "TimerCreated"]
        assert [t["FireAt"][:19] for t in timers] == ["2026-03-01T09:15:00"]

        durable.advance(timedelta(minutes=9))  # 14 minutes in: still waiting
        if via == "client":
            code, _, body = durable.request("POST", f"api/raise/{instance_id}/Approved", {"ref": "pay_9"})
            assert (code, body) == (200, None)
        else:
            durable.raise_event(instance_id, "Approved", {"ref": "pay_9"})
        final = durable.wait(instance_id)

        assert final["runtimeStatus"] == "Completed"
        # The quirk: a dict given to raise_event reaches the orchestrator as its JSON text.
        assert final["output"] == {"booking": {"booking": 7}, "event": '{"ref": "pay_9"}', "event_type": "str"}
        kinds = [e["EventType"] for e in durable.history(instance_id)]
        assert (kinds.count("TimerCreated"), kinds.count("EventRaised"), kinds.count("TimerFired")) == (1, 1, 0)
        assert kinds[-1] == "ExecutionCompleted"


def test_times_out_after_a_restart_when_no_event_comes(durable_hub: str) -> None:
    instance_id, now = start_and_restart(timedelta(minutes=5))

    clock = VirtualClock(start=now)
    with serve(clock) as second:
        durable = DurableHttpHarness(second.url, clock=clock)
        durable.advance(timedelta(minutes=9, seconds=59))
        assert durable.wait(instance_id, {"Running"})["customStatus"] == "waiting"
        durable.advance(timedelta(seconds=1))  # 15 minutes after the start: the durable timer fires
        final = durable.wait(instance_id)

        assert final["runtimeStatus"] == "Completed"
        assert final["output"] == {"booking": {"booking": 7}, "timed_out": True}
        fired = [e for e in durable.history(instance_id) if e["EventType"] == "TimerFired"]
        assert [e["FireAt"][:19] for e in fired] == ["2026-03-01T09:15:00"]
