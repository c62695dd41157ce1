"""The real DurableOrchestrationClient against devhost's Durable HTTP API (status codes and quirks)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from types import ModuleType

import azure.durable_functions as df
import azure.functions as func
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from devhost.clock import VirtualClock
from devhost.durable.api import client_binding_json, durable_routes
from devhost.durable.engine import DurableEngine
from devhost.durable.functions import DirectRunner
from devhost.durable.harness import specs_of
from devhost.durable.service import close_sdk_session
from devhost.durable.store import MemoryStore


@pytest.fixture
async def served(sample: ModuleType) -> AsyncIterator[tuple[DurableEngine, str]]:
    engine = DurableEngine(
        MemoryStore("ContractHub"), DirectRunner(specs_of(sample.build_app())), clock=VirtualClock(), poll_interval=0.02
    )
    app = web.Application()
    app.add_routes(durable_routes(engine))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    await engine.start()
    try:
        yield engine, str(server.make_url("")).rstrip("/")
    finally:
        await engine.stop()
        await server.close()
        await close_sdk_session()  # the client's shared session is bound to this loop; hosts on other loops need theirs


async def test_binding_json_is_what_the_client_parses(served: tuple[DurableEngine, str]) -> None:
    engine, base = served
    binding = json.loads(client_binding_json(engine, base))
    assert binding["taskHubName"] == "ContractHub"
    assert binding["rpcBaseUrl"] == f"{base}/durabletask/"
    client = df.DurableOrchestrationClient(client_binding_json(engine, base))
    request = func.HttpRequest("POST", "http://example.test:8080/api/start/approval", body=b"")
    response = client.create_check_status_response(request, "abc")
    assert response.status_code == 202
    assert response.headers["Location"] == (
        "http://example.test:8080/runtime/webhooks/durabletask/instances/abc?taskHub=ContractHub&connection=Storage"
    )


async def test_client_lifecycle_with_the_extension_quirks(
    served: tuple[DurableEngine, str], sample: ModuleType
) -> None:
    engine, base = served
    client = df.DurableOrchestrationClient(client_binding_json(engine, base))

    instance_id = await client.start_new("approval", None, {"id": 11})
    status = await client.get_status(instance_id, show_input=True)
    assert status.runtime_status in (df.OrchestrationRuntimeStatus.Pending, df.OrchestrationRuntimeStatus.Running)
    assert status.input_ == '{"id": 11}'  # the extension shows the stored input: the client's df_dumps text

    with pytest.raises(Exception, match="doesn't exist, is disabled, or is not an orchestrator function"):
        await client.start_new("no_such_orchestrator")
    with pytest.raises(Exception, match="already exists"):
        await client.start_new("approval", instance_id, {"id": 11})

    await client.raise_event(instance_id, "Approved", {"ref": "pay_123"})
    await engine.wait_for(instance_id)
    status = await client.get_status(instance_id, show_history=True, show_history_output=True)
    assert status.runtime_status == df.OrchestrationRuntimeStatus.Completed
    assert status.output == {"receipt": "r-11", "event_type": "str"}
    assert sample.CALLS[-1] == ("charge", {"booking": {"id": 11}, "event": '{"ref": "pay_123"}'})
    assert any(e["EventType"] == "EventRaised" for e in status.historyEvents)

    with pytest.raises(Exception, match="is gone"):
        await client.raise_event(instance_id, "Approved", 1)
    with pytest.raises(Exception, match="No instance with ID missing found"):
        await client.raise_event("missing", "Approved", 1)
    assert not await client.get_status("missing")

    other = await client.start_new("approval", "second", {"id": 12})
    await client.suspend(other, "hold")
    await engine.wait_for(other, {"Suspended"})
    await client.resume(other, "go")
    await engine.wait_for(other, {"Running"})
    await client.terminate(other, "enough")
    await engine.wait_for(other)
    status = await client.get_status(other)
    assert (status.runtime_status, status.output) == (df.OrchestrationRuntimeStatus.Terminated, "enough")
    await client.terminate(other, "again")  # 410 is accepted silently by the client

    restarted = await client.restart(other)
    assert restarted != other
    assert (await client.get_status(restarted)).runtime_status is not None
    completed = await client.get_status_by(runtime_status=[df.OrchestrationRuntimeStatus.Completed])
    assert [s.instance_id for s in completed] == [instance_id]

    assert (await client.purge_instance_history(instance_id)).instances_deleted == 1
    assert (await client.purge_instance_history(instance_id)).instances_deleted == 0
    with pytest.raises(Exception, match="No instance with ID 'missing' found"):
        await client.terminate("missing", "x")
