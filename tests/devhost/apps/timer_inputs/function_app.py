"""A timer function with another input binding (as a Durable client is), for tests/devhost/test_timers.py."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp()

RECEIVED: list[str] = []


@app.timer_trigger(schedule="0 */5 * * * *", arg_name="timer")
@app.generic_input_binding(arg_name="client", type="durableClient")
def with_client(timer: func.TimerRequest, client: str) -> None:
    RECEIVED.append(client)
