"""A Durable app whose HTTP functions call every DurableOrchestrationClient method, for tests that
drive devhost over real HTTP (restart, scale-out, client contract). The hub comes from the
`DURABLE_TEST_HUB` setting (host.json), so each test gets its own.

Client functions answer JSON; a client exception becomes 400 `{"error": message}`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext) -> Any:
    """Waits 15 minutes for `Approved`; returns the event's payload or that it timed out."""
    booking = context.get_input()
    context.set_custom_status("waiting")
    timeout = context.create_timer(context.current_utc_datetime + timedelta(minutes=15))
    approved = context.wait_for_external_event("Approved")
    winner = yield context.task_any([approved, timeout])
    if winner == approved:
        timeout.cancel()
        return {"booking": booking, "event": approved.result, "event_type": type(approved.result).__name__}
    return {"booking": booking, "timed_out": True}


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext) -> Any:
    count = context.get_input()
    results = yield context.task_all([context.call_activity("square", i) for i in range(count)])
    return {"sum": sum(r["square"] for r in results), "pids": sorted({r["pid"] for r in results})}


@app.orchestration_trigger(context_name="context")
def failing(context: df.DurableOrchestrationContext) -> Any:
    yield context.call_activity("square", 1)
    raise ValueError("kaput")


@app.activity_trigger(input_name="n")
def square(n: int) -> dict[str, int]:
    time.sleep(0.1)  # long enough for a second devhost process to claim some of a fan-out
    return {"square": n * n, "pid": os.getpid()}


def _json(body: Any, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


async def _answer(call: Awaitable[Any]) -> func.HttpResponse:
    try:
        return _json(await call)
    except Exception as exc:
        return _json({"error": str(exc)}, 400)


def _status(status: df.DurableOrchestrationStatus) -> dict[str, Any]:
    return {
        "instanceId": status.instance_id,
        "name": status.name,
        "runtimeStatus": status.runtime_status.value if status.runtime_status else None,
        "input": status.input_,
        "output": status.output,
        "customStatus": status.custom_status,
        "historyEvents": getattr(status, "historyEvents", None),
    }


def _statuses(req: func.HttpRequest) -> list[df.OrchestrationRuntimeStatus] | None:
    text = req.params.get("status")
    return [df.OrchestrationRuntimeStatus(s) for s in text.split(",")] if text else None


def _time(req: func.HttpRequest, name: str) -> datetime | None:
    text = req.params.get(name)
    return datetime.fromisoformat(text).replace(tzinfo=UTC) if text else None  # UTC, given without an offset


@app.route(route="start/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    body = req.get_json() if req.get_body() else None
    try:
        instance_id = await client.start_new(req.route_params["name"], req.params.get("id"), body)
    except Exception as exc:
        return _json({"error": str(exc)}, 400)
    return client.create_check_status_response(req, instance_id)


@app.route(route="start_and_wait/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start_and_wait(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    body = req.get_json() if req.get_body() else None
    instance_id = await client.start_new(req.route_params["name"], None, body)
    timeout_ms = int(req.params.get("timeout_ms", "5000"))
    return await client.wait_for_completion_or_create_check_status_response(req, instance_id, timeout_ms, 50)


@app.route(route="check/{id}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def check(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return client.create_check_status_response(req, req.route_params["id"])


@app.route(route="status/{id}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    flags = {name: req.params.get(name) == "true" for name in ("show_history", "show_history_output", "show_input")}
    found = await client.get_status(req.route_params["id"], **flags)
    return _json(_status(found)) if found else _json({"error": "not found"}, 404)


@app.route(route="status_all", methods=["GET"])
@app.durable_client_input(client_name="client")
async def status_all(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return _json([_status(s) for s in await client.get_status_all()])


@app.route(route="status_by", methods=["GET"])
@app.durable_client_input(client_name="client")
async def status_by(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    found = await client.get_status_by(_time(req, "from"), _time(req, "to"), _statuses(req), req.params.get("prefix"))
    return _json([_status(s) for s in found])


@app.route(route="raise/{id}/{event}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def raise_event(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await _answer(client.raise_event(req.route_params["id"], req.route_params["event"], req.get_json()))


@app.route(route="terminate/{id}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def terminate(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await _answer(client.terminate(req.route_params["id"], req.params.get("reason", "")))


@app.route(route="suspend/{id}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def suspend(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await _answer(client.suspend(req.route_params["id"], req.params.get("reason", "")))


@app.route(route="resume/{id}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def resume(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await _answer(client.resume(req.route_params["id"], req.params.get("reason", "")))


@app.route(route="restart/{id}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def restart(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    new_id = req.params.get("new_id", "true") == "true"
    return await _answer(client.restart(req.route_params["id"], new_id))


@app.route(route="purge/{id}", methods=["DELETE"])
@app.durable_client_input(client_name="client")
async def purge(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    result = await client.purge_instance_history(req.route_params["id"])
    return _json({"instancesDeleted": result.instances_deleted})


@app.route(route="purge_by", methods=["DELETE"])
@app.durable_client_input(client_name="client")
async def purge_by(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    result = await client.purge_instance_history_by(_time(req, "from"), _time(req, "to"), _statuses(req))
    return _json({"instancesDeleted": result.instances_deleted})
