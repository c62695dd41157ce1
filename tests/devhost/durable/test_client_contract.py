"""Every DurableOrchestrationClient method, called by the app's HTTP functions under devhost and
checked over HTTP (functions-host.md §3.5): status codes, the check-status URLs and the quirks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from durable_http_helpers import serve

from devhost.clock import VirtualClock
from devhost.durable.harness import DurableHttpHarness

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
HUB = "ContractHub"


@pytest.fixture(scope="module")
def durable(database_url: str) -> Iterator[DurableHttpHarness]:
    clock = VirtualClock(start=T0)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DEVHOST_DURABLE_DSN", database_url)
        env.setenv("DURABLE_TEST_HUB", f"{HUB}{datetime.now(UTC):%H%M%S%f}")
        with serve(clock) as host:
            yield DurableHttpHarness(host.url, clock=clock)


def call(durable: DurableHttpHarness, method: str, route: str, body: Any = None) -> tuple[int, Any]:
    status, _, payload = durable.request(method, f"api/{route}", body)
    return status, payload


def start(durable: DurableHttpHarness, name: str, body: Any = None, instance_id: str = "") -> str:
    query = f"?id={instance_id}" if instance_id else ""
    return durable.start_via(f"api/start/{name}{query}", body)


def test_start_new_and_the_check_status_urls_work_when_followed(durable: DurableHttpHarness) -> None:
    status, headers, payload = durable.request("POST", "api/start/approval?id=followed", {"booking": 1})
    assert status == 202
    assert payload["id"] == "followed"
    assert headers["Location"] == payload["statusQueryGetUri"]
    assert headers["Retry-After"] == "10"
    assert payload["statusQueryGetUri"].startswith(f"{durable.base_url}/runtime/webhooks/durabletask/instances/")

    durable.wait("followed", {"Running"})
    code, _, running = durable.request("GET", payload["statusQueryGetUri"])
    assert (code, running["runtimeStatus"], running["input"]) == (202, "Running", '{"booking": 1}')
    assert durable.request("POST", payload["suspendPostUri"].replace("{text}", "hold"))[0] == 202
    durable.wait("followed", {"Suspended"})
    assert durable.request("POST", payload["resumePostUri"].replace("{text}", "go"))[0] == 202
    durable.wait("followed", {"Running"})
    event_url = payload["sendEventPostUri"].replace("{eventName}", "Approved")
    assert durable.request("POST", event_url, {"ref": "r1"})[0] == 202
    durable.wait("followed")
    code, _, done = durable.request("GET", payload["statusQueryGetUri"])
    assert (code, done["output"]["event"]) == (200, {"ref": "r1"})  # a JSON object body (not the client's) stays a dict
    assert durable.request("POST", payload["terminatePostUri"].replace("{text}", "late"))[0] == 410
    assert durable.request("POST", payload["rewindPostUri"].replace("{text}", "x"))[0] == 501  # not emulated
    code, _, restarted = durable.request("POST", payload["restartPostUri"])
    assert code == 202 and restarted != "followed"
    code, _, purged = durable.request("DELETE", payload["purgeHistoryDeleteUri"])
    assert (code, purged) == (200, {"instancesDeleted": 1})
    assert durable.request("DELETE", payload["purgeHistoryDeleteUri"])[0] == 404


def test_start_new_errors(durable: DurableHttpHarness) -> None:
    start(durable, "approval", {"booking": 2}, "twice")
    code, payload = call(durable, "POST", "start/approval?id=twice", {"booking": 2})
    assert code == 400 and "already exists" in payload["error"]  # the client raises on the host's 409
    code, payload = call(durable, "POST", "start/nope")
    assert code == 400
    assert "The function 'nope' doesn't exist, is disabled, or is not an orchestrator function" in payload["error"]


def test_get_status_with_and_without_history(durable: DurableHttpHarness) -> None:
    instance_id = start(durable, "fan_out", 2)
    durable.wait(instance_id)
    code, plain = call(durable, "GET", f"status/{instance_id}")
    assert code == 200
    # The input shows as stored: the client's df_dumps text.
    assert (plain["runtimeStatus"], plain["output"]["sum"], plain["input"]) == ("Completed", 1, "2")
    assert plain["historyEvents"] is None
    _, brief = call(durable, "GET", f"status/{instance_id}?show_history=true")
    _, full = call(durable, "GET", f"status/{instance_id}?show_history=true&show_history_output=true")
    completed = [e for e in brief["historyEvents"] if e["EventType"] == "TaskCompleted"]
    assert len(completed) == 2 and all("Result" not in e for e in completed)
    completed = [e for e in full["historyEvents"] if e["EventType"] == "TaskCompleted"]
    assert sorted(e["TaskScheduledId"] for e in completed) == [0, 1] and all("Result" in e for e in completed)
    assert call(durable, "GET", "status/missing") == (404, {"error": "not found"})  # the client's falsy status


def test_get_status_all_and_by(durable: DurableHttpHarness) -> None:
    waiting = start(durable, "approval", {"booking": 3}, "by-waiting")
    done = start(durable, "fan_out", 1, "by-done")
    durable.wait(done)
    durable.wait(waiting, {"Running"})

    _, everything = call(durable, "GET", "status_all")
    ids = {s["instanceId"] for s in everything}
    assert {waiting, done} <= ids
    _, running = call(durable, "GET", "status_by?status=Running&prefix=by-")
    assert [s["instanceId"] for s in running] == [waiting]
    _, either = call(durable, "GET", "status_by?status=Running,Completed&prefix=by-")
    assert sorted(s["instanceId"] for s in either) == [done, waiting]
    later = f"{T0 + timedelta(days=1):%Y-%m-%dT%H:%M:%S}"
    assert call(durable, "GET", f"status_by?from={later}") == (200, [])
    _, until = call(durable, "GET", f"status_by?to={later}&prefix=by-")
    assert len(until) == 2


def test_raise_event_reaches_the_orchestrator_as_a_str_and_errors_after(durable: DurableHttpHarness) -> None:
    instance_id = start(durable, "approval", {"booking": 4})
    durable.wait(instance_id, {"Running"})
    assert call(durable, "POST", f"raise/{instance_id}/Approved", {"ref": "pay_4"}) == (200, None)
    output = durable.wait(instance_id)["output"]
    assert (output["event"], output["event_type"]) == ('{"ref": "pay_4"}', "str")

    code, payload = call(durable, "POST", f"raise/{instance_id}/Approved", 1)
    assert code == 400 and payload["error"] == f"Instance with ID {instance_id} is gone: either completed or failed"
    code, payload = call(durable, "POST", "raise/missing/Approved", 1)
    assert code == 400 and payload["error"] == "No instance with ID missing found."


def test_suspend_holds_events_until_resume_and_terminate_ends_an_instance(durable: DurableHttpHarness) -> None:
    held = start(durable, "approval", {"booking": 5})
    durable.wait(held, {"Running"})
    assert call(durable, "POST", f"suspend/{held}?reason=hold") == (200, None)
    durable.wait(held, {"Suspended"})
    assert call(durable, "POST", f"raise/{held}/Approved", {"ref": "pay_5"}) == (200, None)
    assert call(durable, "POST", f"resume/{held}?reason=go") == (200, None)
    assert durable.wait(held)["output"]["event"] == '{"ref": "pay_5"}'
    assert call(durable, "POST", f"suspend/{held}?reason=late") == (200, None)  # 410: the client ignores it
    assert call(durable, "POST", f"resume/{held}?reason=late") == (200, None)

    ended = start(durable, "approval", {"booking": 6})
    durable.wait(ended, {"Running"})
    assert call(durable, "POST", f"terminate/{ended}?reason=enough") == (200, None)
    final = durable.wait(ended)
    assert (final["runtimeStatus"], final["output"]) == ("Terminated", "enough")
    assert call(durable, "POST", f"terminate/{ended}?reason=again") == (200, None)  # 410: ignored
    missing = (400, {"error": "No instance with ID 'missing' found."})
    for op in ("terminate", "suspend", "resume"):
        assert call(durable, "POST", f"{op}/missing?reason=x") == missing


def test_restart_with_a_new_or_the_same_id(durable: DurableHttpHarness) -> None:
    original = start(durable, "fan_out", 3, "restart-me")
    durable.wait(original)
    code, new_id = call(durable, "POST", f"restart/{original}")
    assert code == 200 and new_id != original
    assert durable.wait(new_id)["output"]["sum"] == 5  # the original input again
    assert call(durable, "POST", f"restart/{original}?new_id=false") == (200, original)
    assert durable.wait(original)["runtimeStatus"] == "Completed"
    code, payload = call(durable, "POST", "restart/missing")
    assert code == 400 and payload["error"] == "No instance with ID 'missing' found."


def test_purge_instance_history_and_purge_by(durable: DurableHttpHarness) -> None:
    done = start(durable, "fan_out", 1, "purge-one")
    durable.wait(done)
    assert call(durable, "DELETE", f"purge/{done}") == (200, {"instancesDeleted": 1})
    assert call(durable, "DELETE", f"purge/{done}") == (200, {"instancesDeleted": 0})  # 404 parsed as none deleted
    assert durable.status(done) is None

    running = start(durable, "approval", {"booking": 7}, "purge-running")
    durable.wait(running, {"Running"})
    assert call(durable, "DELETE", f"purge/{running}") == (200, {"instancesDeleted": 0})  # only terminal instances
    _, before = call(durable, "GET", "status_by?status=Completed,Terminated")
    since = f"{T0:%Y-%m-%dT%H:%M:%S}"
    code, purged = call(durable, "DELETE", f"purge_by?from={since}&status=Completed,Terminated")
    assert (code, purged) == (200, {"instancesDeleted": len(before)}) and before
    assert call(durable, "GET", "status_by?status=Completed,Terminated") == (200, [])
    assert durable.status(running) is not None


def test_wait_for_completion_or_create_check_status_response(durable: DurableHttpHarness) -> None:
    code, _, output = durable.request("POST", "api/start_and_wait/fan_out", 3)
    assert (code, output["sum"]) == (200, 5)  # Completed: 200 with the output itself
    code, _, failed = durable.request("POST", "api/start_and_wait/failing")
    assert (code, failed["runtimeStatus"]) == (500, "Failed")
    assert failed["output"] == "Orchestrator function 'failing' failed: kaput"
    code, headers, pending = durable.request("POST", "api/start_and_wait/approval?timeout_ms=300", {"booking": 8})
    assert code == 202 and headers["Location"] == pending["statusQueryGetUri"]  # not done in time: check status
    durable.raise_event(pending["id"], "Approved", "ok")
    assert durable.wait(pending["id"])["output"]["event"] == '"ok"'  # issue #295: a str gains quotes
