"""The Invoker's worker rules: decoding, $return, context, inputs, functionTimeout, close."""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import azure.functions as func
import pytest
from azure.functions.meta import Datum

from devhost.invoker import InvocationError, InvocationTimeout, Invoker, default_thread_count
from devhost.loader import FunctionSpec

TIMER_JSON = json.dumps({"Schedule": {"AdjustForDST": True}, "ScheduleStatus": None, "IsPastDue": True})


def timer_spec(function: Callable[..., Any], *extra: dict[str, Any]) -> FunctionSpec:
    trigger = {"direction": "IN", "type": "timerTrigger", "name": "timer", "schedule": "0 * * * * *"}
    return FunctionSpec(
        name=function.__name__,
        trigger=trigger,
        bindings=(trigger, *extra),
        user_function=function,
        is_async=inspect.iscoroutinefunction(function),
    )


def timer_datum() -> Datum:
    return Datum(TIMER_JSON, "json")


async def test_trigger_is_decoded_by_the_worker_converter() -> None:
    seen: list[Any] = []

    def tick(timer: func.TimerRequest) -> None:
        seen.append((timer.past_due, threading.current_thread() is threading.main_thread()))

    invoker = Invoker()
    try:
        assert await invoker.invoke(timer_spec(tick), timer_datum()) is None
    finally:
        await invoker.close()
    assert seen == [(True, False)]  # sync functions run on the thread pool


async def test_non_none_return_without_return_binding_fails() -> None:
    def tick(timer: func.TimerRequest) -> str:
        return "oops"

    invoker = Invoker()
    try:
        with pytest.raises(InvocationError, match="without a \\$return binding") as caught:
            await invoker.invoke(timer_spec(tick), timer_datum(), invocation_id="inv-1")
    finally:
        await invoker.close()
    assert caught.value.invocation_id == "inv-1"


async def test_function_exception_becomes_invocation_error() -> None:
    async def tick(timer: func.TimerRequest) -> None:
        raise ValueError("bad")

    invoker = Invoker()
    try:
        with pytest.raises(InvocationError, match="ValueError: bad"):
            await invoker.invoke(timer_spec(tick), timer_datum())
    finally:
        await invoker.close()


async def test_context_and_extra_inputs_are_passed_by_name() -> None:
    seen: dict[str, Any] = {}

    async def tick(timer: func.TimerRequest, client: str, context: func.Context) -> None:
        seen.update(client=client, name=context.function_name, invocation_id=context.invocation_id)

    spec = timer_spec(tick, {"direction": "IN", "type": "durableClient", "name": "client"})
    invoker = Invoker()
    try:
        await invoker.invoke(spec, timer_datum(), inputs={"client": '{"taskHubName": "h"}'}, invocation_id="abc")
        with pytest.raises(InvocationError, match="no value supplied"):
            await invoker.invoke(spec, timer_datum())
    finally:
        await invoker.close()
    assert seen == {"client": '{"taskHubName": "h"}', "name": "tick", "invocation_id": "abc"}


async def test_async_timeout_cancels_the_invocation() -> None:
    cancelled = asyncio.Event()

    async def slow(timer: func.TimerRequest) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    invoker = Invoker(function_timeout=timedelta(milliseconds=100))
    try:
        with pytest.raises(InvocationTimeout):
            await invoker.invoke(timer_spec(slow), timer_datum())
        assert cancelled.is_set()
    finally:
        await invoker.close()


async def test_sync_timeout_fails_and_flags_the_running_thread() -> None:
    release = threading.Event()

    def stuck(timer: func.TimerRequest) -> None:
        release.wait(5)

    invoker = Invoker(function_timeout=timedelta(milliseconds=100))
    try:
        with pytest.raises(InvocationTimeout) as caught:
            await invoker.invoke(timer_spec(stuck), timer_datum())
        assert invoker.overrunning == {caught.value.invocation_id}
        release.set()
        for _ in range(500):  # the thread finishes shortly after release
            if not invoker.overrunning:
                break
            await asyncio.sleep(0.01)
        assert invoker.overrunning == set()
    finally:
        release.set()
        await invoker.close()


async def test_close_cancels_in_flight_async_invocations() -> None:
    started = asyncio.Event()

    async def forever(timer: func.TimerRequest) -> None:
        started.set()
        await asyncio.sleep(30)

    invoker = Invoker()
    call = asyncio.ensure_future(invoker.invoke(timer_spec(forever), timer_datum()))
    await started.wait()
    await invoker.close()
    with pytest.raises(asyncio.CancelledError):
        await call


def test_thread_count_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_THREADPOOL_THREAD_COUNT", "3")
    assert default_thread_count() == 3
    monkeypatch.delenv("PYTHON_THREADPOOL_THREAD_COUNT")
    assert default_thread_count() is None  # ThreadPoolExecutor's min(32, cpu + 4)
