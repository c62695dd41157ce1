"""Plugs the Durable engine into devhost's Host: `service_factory(ctx)` (see host.ServiceContext).

Mounts the Durable HTTP API, supplies the durableClient binding JSON to client functions and runs
the engine with the host's Invoker and Clock. State goes to PostgreSQL when `DEVHOST_DURABLE_DSN`
(else `DATABASE_URL`) is set, otherwise to memory.

The SDK's client keeps one module-global aiohttp session (and lock) bound to the loop that first used
it, which in Azure dies with the worker process. A devhost stop closes it, as the process exit would,
so a host started later in the same process (a restarted HostThread) gets a fresh one.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

from azure.durable_functions.models.utils import http_utils

from devhost.durable.api import client_binding_json, durable_routes
from devhost.durable.engine import DurableEngine
from devhost.durable.functions import InvokerRunner
from devhost.durable.postgres_store import PostgresStore
from devhost.durable.store import MemoryStore, Store
from devhost.hostconfig import ConfigError, process_count
from devhost.loader import FunctionSpec

_DURABLE_TRIGGERS = ("orchestrationTrigger", "activityTrigger")


class DurableService:
    """The engine as a host service; stopping it also ends the SDK client's session (see above)."""

    def __init__(self, engine: DurableEngine) -> None:
        self.engine = engine

    async def start(self) -> None:
        await self.engine.start()

    async def stop(self) -> None:
        try:
            await self.engine.stop()
        finally:
            await close_sdk_session()


async def close_sdk_session() -> None:
    """Close the SDK's shared client session if this loop owns it, and forget its loop-bound lock."""
    session = http_utils._client_session
    if session is not None and session._loop is asyncio.get_running_loop():
        await session.close()
    if session is None or session.closed:
        http_utils._client_session = None
        http_utils._session_lock = asyncio.Lock()


def _check_sdk_session() -> None:
    session = http_utils._client_session
    if session is not None and not session.closed and session._loop is not asyncio.get_running_loop():
        raise RuntimeError(
            "the Durable SDK's shared client session belongs to another event loop; close it on that loop "
            "(devhost.durable.service.close_sdk_session) before serving client functions from this host"
        )


def service_factory(ctx: Any) -> DurableService | None:
    """Build the engine for a host whose app has Durable functions (None otherwise)."""
    app = ctx.app
    if not any(app.by_trigger(t) for t in _DURABLE_TRIGGERS) and not any(
        b.get("type") == "durableClient" for spec in app.functions for b in spec.bindings
    ):
        return None
    hub = ctx.config.hub_name
    dsn = os.environ.get("DEVHOST_DURABLE_DSN") or os.environ.get("DATABASE_URL")
    if not dsn and process_count() > 1:
        # Each process would keep its own in-memory hub: instances started in one are unknown to the others.
        raise ConfigError("Durable functions in several host processes need DATABASE_URL (or DEVHOST_DURABLE_DSN)")
    settings = (ctx.config.host_json.get("extensions") or {}).get("durableTask") or {}
    store: Store = PostgresStore(dsn, hub) if dsn else MemoryStore(hub)
    runner = InvokerRunner(app.functions, ctx.invoker)
    try:
        engine = DurableEngine(
            store, runner, clock=ctx.clock, overridable_states=settings.get("overridableExistingInstanceStates")
        )
    except ValueError as exc:
        raise ConfigError(f"host.json extensions.durableTask.{exc}") from None
    ctx.add_routes(durable_routes(engine))

    def binding(_spec: FunctionSpec, _binding: Mapping[str, Any]) -> str:
        _check_sdk_session()
        return client_binding_json(engine, ctx.base_url)

    ctx.register_input("durableClient", binding)
    return DurableService(engine)
