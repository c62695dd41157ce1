"""A small Durable app for devhost's engine, harness and HTTP API tests.

`build_app()` returns a fresh app each call (an app allows `get_functions()` only once); `app` is
the instance the loader finds. `CALLS` records activity invocations, `FAILURES` makes `flaky` fail
a number of times per input.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

CALLS: list[tuple[str, Any]] = []
FAILURES: dict[int, int] = {}


def build_app() -> df.DFApp:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.orchestration_trigger(context_name="context")
    def approval(context: df.DurableOrchestrationContext) -> Any:
        booking = context.get_input()
        context.set_custom_status("waiting")
        timeout = context.create_timer(context.current_utc_datetime + timedelta(minutes=15))
        approved = context.wait_for_external_event("Approved")
        winner = yield context.task_any([approved, timeout])
        if winner == approved:
            timeout.cancel()
            receipt = yield context.call_activity("charge", {"booking": booking, "event": approved.result})
            context.set_custom_status("charged")
            return receipt
        context.set_custom_status("expired")
        return "expired"

    @app.orchestration_trigger(context_name="context")
    def fan(context: df.DurableOrchestrationContext) -> Any:
        count = context.get_input()
        options = df.RetryOptions(1000, 3)
        results = yield context.task_all([context.call_activity_with_retry("flaky", options, i) for i in range(count)])
        return sum(results)

    @app.orchestration_trigger(context_name="context")
    def parent(context: df.DurableOrchestrationContext) -> Any:
        result = yield context.call_sub_orchestrator("child", context.get_input())
        return {"child": result, "parent_of": context.instance_id}

    @app.orchestration_trigger(context_name="context")
    def child(context: df.DurableOrchestrationContext) -> Any:
        doubled = yield context.call_activity("double", context.get_input())
        return doubled

    @app.orchestration_trigger(context_name="context")
    def looper(context: df.DurableOrchestrationContext) -> Any:
        n = context.get_input()
        yield context.call_activity("double", n)
        if n < 3:
            context.continue_as_new(n + 1)
            return None
        return n

    @app.orchestration_trigger(context_name="context")
    def broken(context: df.DurableOrchestrationContext) -> Any:
        yield context.call_activity("double", 1)
        raise ValueError("kaput")

    @app.activity_trigger(input_name="payload")
    def charge(payload: dict[str, Any]) -> dict[str, Any]:
        CALLS.append(("charge", payload))
        return {"receipt": f"r-{payload['booking']['id']}", "event_type": type(payload["event"]).__name__}

    @app.activity_trigger(input_name="n")
    def flaky(n: int) -> int:
        CALLS.append(("flaky", n))
        if FAILURES.get(n, 0) > 0:
            FAILURES[n] -= 1
            raise RuntimeError(f"flaky {n} failed")
        return n * 10

    @app.activity_trigger(input_name="x")
    async def double(x: int) -> int:
        CALLS.append(("double", x))
        return x * 2

    @app.route(route="start/{name}", methods=["POST"])
    @app.durable_client_input(client_name="client")
    async def starter(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
        body = req.get_body()
        instance_id = await client.start_new(req.route_params["name"], None, req.get_json() if body else None)
        return client.create_check_status_response(req, instance_id)

    return app


app = build_app()
