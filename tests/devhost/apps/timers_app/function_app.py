"""Timer functions for tests/devhost/test_timers.py; each records what it was given in CALLS."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp()

CALLS: list[tuple[str, func.TimerRequest]] = []


@app.timer_trigger(schedule="0 0 9 * * *", arg_name="timer")
def daily(timer: func.TimerRequest) -> None:
    CALLS.append(("daily", timer))


@app.timer_trigger(schedule="0 */10 * * * *", arg_name="timer")
async def failing(timer: func.TimerRequest) -> None:
    CALLS.append(("failing", timer))
    raise RuntimeError("boom")


@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer", run_on_startup=True)
def on_startup(timer: func.TimerRequest) -> None:
    CALLS.append(("on_startup", timer))


@app.timer_trigger(schedule="*/30 * * * * *", arg_name="timer")
async def frequent(timer: func.TimerRequest) -> None:
    CALLS.append(("frequent", timer))


@app.timer_trigger(schedule="01:00:00", arg_name="timer", use_monitor=False)
def hourly_unmonitored(timer: func.TimerRequest) -> None:
    CALLS.append(("hourly_unmonitored", timer))
