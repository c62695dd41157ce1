"""host.json `extensions.durableTask.overridableExistingInstanceStates`: whether start_new with the
id of an existing instance replaces it.

As the extension (OverridableStatesExtensions.ToDedupeStatuses): `NonRunningStates`, the default,
refuses while the instance is Running, ContinuedAsNew, Pending or Suspended (the HTTP API answers
409 `{"Message": "An Orchestration instance with the status <status> already exists."}`, which the
Python client raises) and replaces it once it is Completed, Failed, Terminated or Canceled;
`AnyState` replaces it in every status: the running execution is dropped and the new one starts.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from durable_http_helpers import CLIENT_APP

from devhost.clock import VirtualClock
from devhost.durable.harness import DurableHttpHarness
from devhost.durable.postgres_store import PostgresStore
from devhost.durable.protocol import RuntimeStatus
from devhost.durable.store import EpisodeCommit, InstanceExistsError, InstanceRecord, MemoryStore, Message, Store
from devhost.host import builtin_service_factories
from devhost.hostconfig import ConfigError
from devhost.testing import HostThread

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
NON_RUNNING = frozenset({"Running", "ContinuedAsNew", "Pending", "Suspended"})
ALL_STATUSES = sorted(NON_RUNNING | RuntimeStatus.TERMINAL)


@contextmanager
def serve(app_dir: Path, database_url: str, states: str | None) -> Iterator[DurableHttpHarness]:
    """apps/durable_http_client under devhost with `states` in its host.json (absent when None)."""
    shutil.copy(CLIENT_APP / "function_app.py", app_dir / "function_app.py")
    durable: dict[str, Any] = {"hubName": "%DURABLE_TEST_HUB%"}
    if states is not None:
        durable["overridableExistingInstanceStates"] = states
    (app_dir / "host.json").write_text(json.dumps({"version": "2.0", "extensions": {"durableTask": durable}}))
    clock = VirtualClock(start=T0)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DEVHOST_DURABLE_DSN", database_url)
        env.setenv("DURABLE_TEST_HUB", f"hub{uuid4().hex[:10]}")
        with HostThread(app_dir, clock=clock, services=builtin_service_factories()) as host:
            yield DurableHttpHarness(host.url, clock=clock)


@pytest.fixture(scope="module")
def host(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, database_url: str
) -> Iterator[DurableHttpHarness]:
    """The host with the setting the test is parametrized with. One fixture, so that only one host
    (and its SDK client session) is alive at a time."""
    with serve(tmp_path_factory.mktemp("app"), database_url, request.param) as durable:
        yield durable


# The default (no setting) and NonRunningStates, spelt as the host also accepts it.
refusing = pytest.mark.parametrize("host", [None, "NonRunningStates", "nonrunningstates"], indirect=True)
replacing = pytest.mark.parametrize("host", ["AnyState"], indirect=True)


def start(durable: DurableHttpHarness, instance_id: str, booking: int) -> tuple[int, Any]:
    """client.start_new("approval", instance_id, {"booking": booking}) in the app's starter function."""
    status, _, payload = durable.request("POST", f"api/start/approval?id={instance_id}", {"booking": booking})
    return status, payload


@refusing
def test_non_running_states_refuse_a_running_or_suspended_instance(host: DurableHttpHarness) -> None:
    instance_id = f"busy-{uuid4().hex[:8]}"
    assert start(host, instance_id, 1)[0] == 202
    host.wait(instance_id, {"Running"})

    code, payload = start(host, instance_id, 2)
    assert code == 400  # the starter function's answer to the exception the client raised on the 409
    assert "An Orchestration instance with the status Running already exists." in payload["error"]
    url = f"{host.api}/orchestrators/approval/{instance_id}"
    status, _, body = host.request("POST", url, {"booking": 3})
    assert (status, body) == (409, {"Message": "An Orchestration instance with the status Running already exists."})
    assert host.status(instance_id)["input"] == '{"booking": 1}'  # type: ignore[index]

    host.request("POST", f"api/suspend/{instance_id}?reason=hold")
    host.wait(instance_id, {"Suspended"})
    code, payload = start(host, instance_id, 4)
    assert code == 400 and "with the status Suspended already exists" in payload["error"]
    restart = f"{host.api}/instances/{instance_id}/restart?restartWithNewInstanceId=false"
    status, _, body = host.request("POST", restart)
    assert status == 409
    assert body["Message"] == "A non-terminal instance with this instance ID already exists."
    assert body["ExceptionType"] == "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException"


@refusing
def test_non_running_states_replace_a_finished_instance(host: DurableHttpHarness) -> None:
    instance_id = f"done-{uuid4().hex[:8]}"
    start(host, instance_id, 1)
    host.wait(instance_id, {"Running"})
    host.request("POST", f"api/terminate/{instance_id}?reason=stop")
    host.wait(instance_id, {"Terminated"})

    assert start(host, instance_id, 2)[0] == 202
    status = host.wait(instance_id, {"Running"})
    assert status["input"] == '{"booking": 2}'


@replacing
def test_any_state_replaces_a_running_instance_with_a_new_execution(host: DurableHttpHarness) -> None:
    instance_id = f"busy-{uuid4().hex[:8]}"
    assert start(host, instance_id, 1)[0] == 202
    host.wait(instance_id, {"Running"})

    assert start(host, instance_id, 2)[0] == 202
    status = host.wait(instance_id, {"Running"})
    assert status["input"] == '{"booking": 2}'
    host.raise_event(instance_id, "Approved", {"ref": "r2"})
    done = host.wait(instance_id)
    assert (done["runtimeStatus"], done["output"]["booking"]) == ("Completed", {"booking": 2})
    started = [e for e in host.history(instance_id) if e["EventType"] == "ExecutionStarted"]
    assert len(started) == 1  # the new execution's history only


@replacing
def test_any_state_replaces_a_suspended_instance_and_restarts_in_place(host: DurableHttpHarness) -> None:
    instance_id = f"held-{uuid4().hex[:8]}"
    start(host, instance_id, 1)
    host.wait(instance_id, {"Running"})
    host.request("POST", f"api/suspend/{instance_id}?reason=hold")
    host.wait(instance_id, {"Suspended"})

    assert start(host, instance_id, 2)[0] == 202
    assert host.wait(instance_id, {"Running"})["input"] == '{"booking": 2}'
    status, _, restarted = host.request("POST", f"api/restart/{instance_id}?new_id=false")
    assert (status, restarted) == (200, instance_id)  # what the app's function got from client.restart
    assert host.wait(instance_id, {"Running"})["input"] == '{"booking": 2}'


def test_an_unknown_value_stops_the_host(tmp_path: Path, database_url: str) -> None:
    with pytest.raises(ConfigError, match="overridableExistingInstanceStates"), serve(tmp_path, database_url, "Never"):
        pass


# --- the stores: the statuses decide, whatever the store ---------------------------------------------


def record(instance_id: str, status: str, booking: int) -> tuple[InstanceRecord, Message]:
    execution = uuid4().hex
    start_event = {"EventType": 0, "EventId": -1, "Input": json.dumps({"booking": booking})}
    return (
        InstanceRecord(instance_id, "approval", execution, status, str(booking), T0, T0),
        Message(instance_id, start_event, T0, execution),
    )


@pytest.fixture(params=["memory", "postgres"])
async def store(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[Store]:
    hub = f"hub{uuid4().hex[:10]}"
    made: Store = MemoryStore(hub) if request.param == "memory" else PostgresStore(database_url, hub)
    await made.open()
    yield made
    await made.close()


@pytest.mark.parametrize("existing", ALL_STATUSES)
async def test_a_store_refuses_only_the_dedupe_statuses(store: Store, existing: str) -> None:
    instance_id = f"s-{uuid4().hex[:8]}"
    await store.create_instance(*record(instance_id, existing, 1), dedupe_statuses=NON_RUNNING)
    if existing in NON_RUNNING:
        with pytest.raises(InstanceExistsError, match=f"with the status {existing} already exists"):
            await store.create_instance(*record(instance_id, "Pending", 2), dedupe_statuses=NON_RUNNING)
        assert (await store.get_instance(instance_id)).input == "1"  # type: ignore[union-attr]
    else:
        await store.create_instance(*record(instance_id, "Pending", 2), dedupe_statuses=NON_RUNNING)
        assert (await store.get_instance(instance_id)).input == "2"  # type: ignore[union-attr]
    await store.create_instance(*record(instance_id, "Pending", 3), dedupe_statuses=frozenset())
    assert (await store.get_instance(instance_id)).input == "3"  # type: ignore[union-attr]


async def test_an_episode_of_a_replaced_execution_never_overwrites_the_new_one(store: Store) -> None:
    instance_id = f"e-{uuid4().hex[:8]}"
    await store.create_instance(*record(instance_id, "Pending", 1), dedupe_statuses=frozenset())
    async with store.claim_episode(T0) as work:
        assert work is not None and work.instance is not None and work.instance.input == "1"
        replacement = store.create_instance(*record(instance_id, "Pending", 2), dedupe_statuses=frozenset())
        if isinstance(store, MemoryStore):
            await replacement  # nothing to wait for: the new execution lands while the old episode runs
            pending = None
        else:
            pending = asyncio.create_task(replacement)  # waits for the episode's instance lock
        running = InstanceRecord(**{**vars(work.instance), "status": "Running"})
        started = {"EventType": 12, "EventId": -1, "Timestamp": "2026-05-01T12:00:00Z"}
        await work.commit(EpisodeCommit(running, [started], [m.id for m in work.messages]))
    if pending is not None:
        await pending
    current = await store.get_instance(instance_id)
    assert current is not None and (current.input, current.status) == ("2", "Pending")
    assert await store.get_history(instance_id) == []
