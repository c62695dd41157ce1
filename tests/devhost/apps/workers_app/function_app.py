"""For tests/devhost/test_worker_processes.py: which process served a request, and when the timer fired where."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="pid", methods=["GET"])
async def pid(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(str(os.getpid()))


@app.timer_trigger(schedule="*/1 * * * * *", arg_name="timer")
def tick(timer: func.TimerRequest) -> None:
    # One line per invocation: the process, and the occurrence's second (invocations follow it closely).
    with open(os.environ["WORKERS_TICK_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{os.getpid()} {datetime.now(UTC):%Y-%m-%dT%H:%M:%S}\n")
