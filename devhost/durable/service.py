"""Plugs the Durable engine into devhost's Host: `service_factory(ctx)` (see host.ServiceContext).

Mounts the Durable HTTP API, supplies the durableClient binding JSON to client functions and runs
the engine with the host's Invoker and Clock. State goes to PostgreSQL when `DEVHOST_DURABLE_DSN`
(else `DATABASE_URL`) is set, otherwise to memory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from devhost.durable.api import client_binding_json, durable_routes
from devhost.durable.engine import DurableEngine
from devhost.durable.functions import InvokerRunner
from devhost.durable.postgres_store import PostgresStore
from devhost.durable.store import MemoryStore, Store
from devhost.loader import FunctionSpec

_DURABLE_TRIGGERS = ("orchestrationTrigger", "activityTrigger")


def service_factory(ctx: Any) -> DurableEngine | None:
    """Build the engine for a host whose app has Durable functions (None otherwise)."""
    app = ctx.app
    if not any(app.by_trigger(t) for t in _DURABLE_TRIGGERS) and not any(
        b.get("type") == "durableClient" for spec in app.functions for b in spec.bindings
    ):
        return None
    hub = ctx.config.hub_name
    dsn = os.environ.get("DEVHOST_DURABLE_DSN") or os.environ.get("DATABASE_URL")
    store: Store = PostgresStore(dsn, hub) if dsn else MemoryStore(hub)
    engine = DurableEngine(store, InvokerRunner(app.functions, ctx.invoker), clock=ctx.clock)
    ctx.add_routes(durable_routes(engine))

    def binding(_spec: FunctionSpec, _binding: Mapping[str, Any]) -> str:
        return client_binding_json(engine, ctx.base_url)

    ctx.register_input("durableClient", binding)
    return engine
