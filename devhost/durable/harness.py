"""`DurableHarness`: run an app's orchestrations in-process, with virtual time, for app tests;
`DurableHttpHarness`: the same verbs against a running devhost over HTTP.

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
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from datetime import timedelta
from types import TracebackType
from typing import Any
from urllib.parse import quote

import azure.functions as func
from azure.functions._durable_functions import df_dumps

from devhost.clock import Clock, VirtualClock
from devhost.durable.api import WEBHOOK_PREFIX
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


class DurableHttpHarness:
    """The same test verbs against a running devhost over HTTP (its Durable HTTP API), blocking.

    For tests that run the host with `devhost.testing.HostThread` (or `python -m devhost`). Inputs and
    events are encoded exactly as `DurableOrchestrationClient` sends them; `advance` needs the host's
    VirtualClock.

        with HostThread(app_dir, clock=VirtualClock(), services=builtin_service_factories()) as ht:
            durable = DurableHttpHarness(ht.url, clock=ht.clock)
            instance_id = durable.start("approval", {"id": 5})
            durable.advance(timedelta(minutes=15))
            assert durable.wait(instance_id)["runtimeStatus"] == "Completed"
    """

    def __init__(self, base_url: str, *, clock: Clock | None = None, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api = f"{self.base_url}{WEBHOOK_PREFIX}"
        self.clock = clock
        self.timeout = timeout

    def request(self, method: str, url: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
        """(status, headers, JSON body or None) for `url` (absolute, or relative to the host); 4xx/5xx do not raise."""
        url = url if "://" in url else f"{self.base_url}/{url.lstrip('/')}"
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 (devhost's URL)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                status, headers, raw = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            status, headers, raw = error.code, dict(error.headers), error.read()
        return status, headers, json.loads(raw) if raw.strip() else None

    def start(self, orchestrator: str, input: Any = None, instance_id: str | None = None) -> str:
        """`client.start_new(orchestrator, instance_id, input)` through the raw API."""
        path = f"{self.api}/orchestrators/{quote(orchestrator, safe='')}"
        if instance_id is not None:
            path += f"/{quote(instance_id, safe='')}"
        status, _, body = self.request("POST", path, df_dumps(input) if input is not None else None)
        if status != 202:
            raise RuntimeError(f"start {orchestrator}: HTTP {status} {body}")
        return str(body["id"])

    def start_via(self, route: str, body: Any = None) -> str:
        """POST to an app's starter function that answers with `create_check_status_response`."""
        status, headers, payload = self.request("POST", route, body)
        if status != 202 or "Location" not in headers:
            raise RuntimeError(f"starter {route}: HTTP {status} {payload}")
        return str(payload["id"])

    def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        """`client.raise_event`: the data is sent double-encoded, so a dict arrives as a str."""
        url = f"{self.api}/instances/{quote(instance_id, safe='')}/raiseEvent/{quote(name, safe='')}"
        status, _, body = self.request("POST", url, json.dumps(data))
        if status != 202:
            raise RuntimeError(f"raise_event {name} on {instance_id}: HTTP {status} {body}")

    def status(self, instance_id: str, *, history: bool = False) -> dict[str, Any] | None:
        """The status payload (with `historyEvents` including outputs when `history`); None for 404."""
        query = "?showHistory=true&showHistoryOutput=true" if history else ""
        status, _, body = self.request("GET", f"{self.api}/instances/{quote(instance_id, safe='')}{query}")
        if status == 404:
            return None
        if status not in (200, 202):
            raise RuntimeError(f"status of {instance_id}: HTTP {status} {body}")
        return dict(body)

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        """The instance's history events (EventType by name) as the API shows them."""
        status = self.status(instance_id, history=True)
        if status is None:
            raise LookupError(instance_id)
        return list(status["historyEvents"])

    def wait(
        self, instance_id: str, statuses: Iterable[str] = RuntimeStatus.TERMINAL, seconds: float = 10.0
    ) -> dict[str, Any]:
        """Poll (real time) until the instance reaches one of `statuses`; return its status payload."""
        wanted = set(statuses)
        deadline = time.monotonic() + seconds
        while True:
            status = self.status(instance_id)
            if status is not None and status["runtimeStatus"] in wanted:
                return status
            if time.monotonic() > deadline:
                state = status["runtimeStatus"] if status else "absent"
                raise TimeoutError(f"instance {instance_id} is {state}, not {sorted(wanted)}, after {seconds}s")
            time.sleep(0.02)

    def advance(self, delta: timedelta) -> None:
        """Move the host's virtual time forward; due durable timers fire."""
        if not isinstance(self.clock, VirtualClock):
            raise TypeError("advance needs the host's VirtualClock")
        self.clock.advance(delta)
