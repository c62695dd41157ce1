"""`DurableHarness`: run an app's orchestrations in-process, with virtual time, for app tests.

It is the real engine (MemoryStore + replayer) calling the real SDK, so orchestrators replay exactly
as under the host; only HTTP is skipped. Inputs and events are encoded the way the real
DurableOrchestrationClient and the extension encode them (so `raise_event` with a dict reaches the
orchestrator as a str, as in Azure).

    async with DurableHarness(app) as durable:
        instance_id = await durable.start("booking_orchestrator", {"booking_id": 42})
        durable.advance(timedelta(minutes=15))
        status = await durable.wait(instance_id)
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Iterable
from datetime import timedelta
from types import TracebackType
from typing import Any

import azure.functions as func
from azure.functions._durable_functions import df_dumps

from devhost.clock import VirtualClock
from devhost.durable.engine import DurableEngine
from devhost.durable.functions import DirectRunner
from devhost.durable.protocol import Event, RuntimeStatus
from devhost.durable.store import MemoryStore, Store
from devhost.loader import FunctionSpec, LoadedApp


def specs_of(app: func.FunctionRegister) -> list[FunctionSpec]:
    """FunctionSpecs for an app object (calls `get_functions()`, which an app allows only once)."""
    specs = []
    for function in app.get_functions():
        bindings = tuple(json.loads(raw) for raw in function.get_raw_bindings())
        trigger = function.get_trigger()
        assert trigger is not None
        index = function.get_bindings().index(trigger)
        user_function = function.get_user_function()
        specs.append(
            FunctionSpec(
                name=str(function.get_function_name()),
                trigger=bindings[index],
                bindings=bindings,
                user_function=user_function,
                is_async=inspect.iscoroutinefunction(user_function),
            )
        )
    return specs


class DurableHarness:
    """The Durable engine in-process over a MemoryStore and a VirtualClock."""

    def __init__(
        self,
        app: func.FunctionRegister | LoadedApp | Iterable[FunctionSpec],
        *,
        clock: VirtualClock | None = None,
        store: Store | None = None,
        hub: str = "TestHubName",
    ) -> None:
        if isinstance(app, func.FunctionRegister):
            specs = specs_of(app)
        elif isinstance(app, LoadedApp):
            specs = list(app.functions)
        else:
            specs = list(app)
        self.clock = clock or VirtualClock()
        self.store: Store = store or MemoryStore(hub)
        self.engine = DurableEngine(self.store, DirectRunner(specs), clock=self.clock, poll_interval=0.02)

    async def __aenter__(self) -> DurableHarness:
        await self.engine.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.engine.stop()

    async def start(self, orchestrator: str, input: Any = None, instance_id: str | None = None) -> str:
        """`client.start_new(orchestrator, instance_id, input)`."""
        stored = None if input is None else json.dumps(df_dumps(input))
        return await self.engine.start_new(orchestrator, instance_id, stored)

    async def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        """`client.raise_event(instance_id, name, data)`: a dict arrives as its JSON text (a str)."""
        await self.engine.raise_event(instance_id, name, json.dumps(json.dumps(data)))

    async def terminate(self, instance_id: str, reason: str) -> None:
        """`client.terminate(instance_id, reason)`."""
        await self.engine.terminate(instance_id, reason)

    def advance(self, delta: timedelta) -> None:
        """Move virtual time forward; due durable timers fire."""
        self.clock.advance(delta)

    async def settle(self, seconds: float = 10.0) -> None:
        """Wait (real time) until nothing is due at the current virtual time and no activity runs."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        quiet = 0
        while quiet < 3:
            busy = await self.store.has_work(self.clock.now())
            quiet = 0 if busy else quiet + 1
            if loop.time() > deadline:
                raise TimeoutError("the durable engine did not settle")
            await asyncio.sleep(0.01)

    async def advance_and_settle(self, delta: timedelta, *, steps: int = 1) -> None:
        """Settle, then `steps` times: advance by `delta` and settle (retry timers need several steps)."""
        await self.settle()
        for _ in range(steps):
            self.advance(delta)
            await self.settle()

    async def wait(
        self, instance_id: str, statuses: Iterable[str] = RuntimeStatus.TERMINAL, seconds: float = 10.0
    ) -> dict[str, Any]:
        """Wait (real time) until the instance reaches one of `statuses`; return its status payload."""
        await self.engine.wait_for(instance_id, statuses, seconds)
        status = await self.engine.status(instance_id)
        assert status is not None
        return status

    async def status(self, instance_id: str) -> dict[str, Any] | None:
        """`client.get_status(instance_id)` as JSON."""
        return await self.engine.status(instance_id)

    async def history(self, instance_id: str) -> list[Event]:
        """The DTFx history of the instance's current execution."""
        return await self.store.get_history(instance_id)
