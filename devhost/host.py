"""The local Functions host: config + loader + invoker + HTTP server + background services.

Trigger listeners other than HTTP (timers, blobs, the Durable engine) are BackgroundServices built
by factories at start. A factory receives a ServiceContext through which it can:
- read the loaded app, the invoker, the clock and the host config;
- register a dispatcher so Core Tools' admin API (`POST /admin/functions/{name}`) can fire its
  functions (`register_fire("timerTrigger", ...)`);
- supply values for non-trigger input bindings (`register_input("durableClient", ...)`);
- mount aiohttp routes or sub-applications on the host's server (e.g. the Durable HTTP API).

Start order: config (local.settings.json into the environment, then host.json), load and validate
the app, factories, HTTP server, then services in order. Stop runs in reverse and cancels
in-flight invocations.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from aiohttp import web

from devhost.clock import Clock, SystemClock
from devhost.hostconfig import ConfigError, HostConfig, load_host_config, process_count
from devhost.http_server import FireCallback, FunctionKeys, HttpServer
from devhost.invoker import Invoker
from devhost.loader import FunctionSpec, LoadedApp, build_routes, check_routes, load_app
from devhost.routing import Route, Router

log = logging.getLogger("devhost.host")

InputProvider = Callable[[FunctionSpec, Mapping[str, Any]], Any]


class BackgroundService(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class ServiceContext:
    """What a service factory gets; registrations must happen inside the factory call."""

    app: LoadedApp
    invoker: Invoker
    clock: Clock
    config: HostConfig
    fire_dispatchers: dict[str, FireCallback] = field(default_factory=dict)
    input_providers: dict[str, InputProvider] = field(default_factory=dict)
    extra_routes: list[web.AbstractRouteDef] = field(default_factory=list)
    subapps: dict[str, web.Application] = field(default_factory=dict)
    base_url: str = ""  # set once the server listens, before services start

    def register_fire(self, trigger_type: str, fire: FireCallback) -> None:
        """Let the admin API fire functions of this trigger type: `await fire(name, input)`."""
        self.fire_dispatchers[trigger_type] = fire

    def register_input(self, binding_type: str, provider: InputProvider) -> None:
        """Supply the decoded value of an input binding type: `provider(spec, binding_json)`."""
        self.input_providers[binding_type] = provider

    def add_routes(self, routes: Sequence[web.AbstractRouteDef]) -> None:
        """Mount aiohttp routes; they take precedence over function routes."""
        self.extra_routes.extend(routes)

    def add_subapp(self, prefix: str, app: web.Application) -> None:
        """Mount an aiohttp sub-application under `prefix`."""
        self.subapps[prefix] = app


ServiceFactory = Callable[[ServiceContext], BackgroundService | None]


class Host:
    """A local Functions host for the app in `app_dir`.

    `port=0` binds a free port (read `url` after `start()`); `reuse_port` shares the port with other
    host processes (see devhost.supervisor). With `enforce_keys`, FUNCTION/ADMIN
    routes and the admin API need keys: `keys`, or random ones (see `self.keys`). `services` are
    BackgroundService factories (see `builtin_service_factories`); `extra_routes`/`subapps` are
    mounted on the server like the ones factories add.
    """

    def __init__(
        self,
        app_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 7071,
        clock: Clock | None = None,
        enforce_keys: bool = False,
        keys: FunctionKeys | None = None,
        services: Sequence[ServiceFactory] = (),
        script: str | None = None,
        thread_count: int | None = None,
        extra_routes: Sequence[web.AbstractRouteDef] = (),
        subapps: Mapping[str, web.Application] | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.app_dir = Path(app_dir).resolve()
        self.bind_host = host
        self.port = port
        self.clock: Clock = clock or SystemClock()
        self.keys = (keys or FunctionKeys.generate()) if enforce_keys else None
        self.service_factories = tuple(services)
        self.script = script or os.environ.get("PYTHON_SCRIPT_FILE_NAME", "function_app.py")
        self.thread_count = thread_count
        self.extra_routes = tuple(extra_routes)
        self.subapps = dict(subapps or {})
        self.reuse_port = reuse_port
        self.url = ""
        self.services: list[BackgroundService] = []
        self._started: list[BackgroundService] = []
        self._config: HostConfig | None = None
        self._app: LoadedApp | None = None
        self._invoker: Invoker | None = None
        self._server: HttpServer | None = None
        self._context: ServiceContext | None = None
        self.routes: list[Route] = []

    @property
    def config(self) -> HostConfig:
        assert self._config is not None, "the host is not started"
        return self._config

    @property
    def app(self) -> LoadedApp:
        assert self._app is not None, "the host is not started"
        return self._app

    @property
    def invoker(self) -> Invoker:
        assert self._invoker is not None, "the host is not started"
        return self._invoker

    @property
    def context(self) -> ServiceContext:
        assert self._context is not None, "the host is not started"
        return self._context

    async def start(self) -> str:
        """Load the app, start the HTTP server and the services; return the base URL."""
        self._config = load_host_config(self.app_dir)
        self._app = load_app(self.app_dir, self.script)
        self.routes = build_routes(self._app.functions, self._config.route_prefix)
        check_routes(self.routes)
        self._invoker = Invoker(self.thread_count, function_timeout=self._config.function_timeout)
        context = self._context = ServiceContext(self._app, self._invoker, self.clock, self._config)
        context.add_routes(self.extra_routes)
        context.subapps.update(self.subapps)
        try:
            for factory in self.service_factories:
                service = factory(context)
                if service is not None:
                    self.services.append(service)
            self._server = HttpServer(
                router=Router(self.routes),
                functions={spec.name: spec for spec in self._app.functions},
                invoker=self._invoker,
                keys=self.keys,
                dispatchers=context.fire_dispatchers,
                inputs_for=self._inputs_for,
                extra_routes=context.extra_routes,
                subapps=context.subapps,
            )
            self.url = context.base_url = await self._server.start(
                self.bind_host, self.port, reuse_port=self.reuse_port
            )
            for service in self.services:
                await service.start()
                self._started.append(service)
            self._server.mark_running()
        except BaseException:
            await self.stop()
            raise
        log.info("devhost listening on %s", self.url)
        return self.url

    def _inputs_for(self, spec: FunctionSpec) -> dict[str, Any]:
        inputs = {}
        for binding in spec.input_bindings():
            provider = self.context.input_providers.get(str(binding.get("type")))
            if provider is None:
                raise LookupError(f"no provider for {binding.get('type')} inputs (function {spec.name!r})")
            inputs[binding["name"]] = provider(spec, binding)
        return inputs

    async def fire(self, name: str, input_text: str = "") -> None:
        """Fire a non-HTTP function through its trigger's dispatcher (what the admin API does)."""
        spec = self.app.get(name)
        dispatcher = self.context.fire_dispatchers.get(spec.trigger_type)
        if dispatcher is None:
            raise LookupError(f"no dispatcher for {spec.trigger_type} functions ({spec.name!r})")
        await dispatcher(spec.name, input_text)

    async def stop(self) -> None:
        """Stop services (reverse order), cancel in-flight invocations, close the server."""
        while self._started:
            service = self._started.pop()
            try:
                await service.stop()
            except Exception:
                log.exception("stopping %r failed", service)
        if self._invoker is not None:
            await self._invoker.close()
        if self._server is not None:
            await self._server.stop()
            self._server = None

    def function_table(self) -> list[tuple[str, str, str]]:
        """(name, trigger type, URL or '') per function, in registration order, for display."""
        urls = {route.name: f"{self.url}/{route.template.text}" for route in self.routes}
        methods = {
            route.name: "" if route.methods is None else ",".join(sorted(m for m in route.methods if m != "HEAD"))
            for route in self.routes
        }
        table = []
        for spec in self.app.functions:
            if spec.name in urls:
                table.append((spec.name, f"[{methods[spec.name] or 'ANY'}]", urls[spec.name]))
            else:
                table.append((spec.name, spec.trigger_type, ""))
        return table


def builtin_service_factories() -> list[ServiceFactory]:
    """Factories for the timer and blob listeners, imported lazily (a missing module is skipped).

    A module may export `service_factory(ctx) -> BackgroundService | None`; otherwise its
    `TimerScheduler` / `BlobTriggerPoller` is built with the defaults below.
    """
    factories: list[ServiceFactory] = []
    builders = (
        ("devhost.timers", _timer_service),
        ("devhost.blobs", _blob_service),
        ("devhost.durable.service", None),
    )
    for module_name, builder in builders:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            log.warning("%s is not available (%s); its triggers will not fire", module_name, exc)
            continue
        factory = getattr(module, "service_factory", None)
        if callable(factory):
            factories.append(factory)
        elif builder is not None:
            factories.append(functools.partial(builder, module))
    return factories


def _timer_service(module: Any, ctx: ServiceContext) -> BackgroundService | None:
    if not ctx.app.by_trigger("timerTrigger"):
        return None
    from devhost.hoststorage import default_host_id
    from devhost.timer_status import BlobScheduleStatusStore, MemoryScheduleStatusStore, ScheduleStatusStore

    # Like the host, schedule status lives in AzureWebJobsStorage, so a restart after downtime
    # gets its past-due run; without that setting it is kept in memory.
    storage = os.environ.get("AzureWebJobsStorage")
    status_store: ScheduleStatusStore = (
        BlobScheduleStatusStore(storage, default_host_id()) if storage else MemoryScheduleStatusStore()
    )

    def inputs_for(spec: FunctionSpec) -> dict[str, Any]:
        inputs = {}
        for binding in spec.input_bindings():
            provider = ctx.input_providers.get(str(binding.get("type")))
            if provider is None:
                raise LookupError(f"no provider for {binding.get('type')} inputs (function {spec.name!r})")
            inputs[binding["name"]] = provider(spec, binding)
        return inputs

    # Like the host's SingletonListener: each timer's listener runs in the one process holding its
    # lease in AzureWebJobsStorage, so several host processes fire each occurrence once.
    locks = None
    if storage:
        from devhost.leases import ListenerLocks

        locks = ListenerLocks(storage, default_host_id(), ctx.config.singleton.listener_lock_period)
    elif process_count() > 1:
        raise ConfigError("timer triggers in several host processes need AzureWebJobsStorage (for the singleton lock)")
    scheduler = module.TimerScheduler(
        ctx.app.functions,
        ctx.invoker,
        ctx.clock,
        status_store,
        listener_locks=locks,
        lock_recovery_interval=ctx.config.singleton.listener_lock_recovery_polling_interval.total_seconds(),
        inputs_for=inputs_for,
    )
    ctx.register_fire("timerTrigger", lambda name, _input: scheduler.fire_now(name))
    return cast(BackgroundService, scheduler)


def _blob_service(module: Any, ctx: ServiceContext) -> BackgroundService | None:
    if not ctx.app.by_trigger("blobTrigger"):
        return None

    def connection_string_for(setting: str) -> str:
        value = os.environ.get(setting) or os.environ.get(f"{setting}__connectionString")
        if not value:
            raise LookupError(f"app setting {setting!r} (a blob trigger connection) is not defined")
        return value

    poller = module.BlobTriggerPoller(ctx.app.functions, ctx.invoker, connection_string_for)
    ctx.register_fire("blobTrigger", lambda name, path: poller.deliver(name, path))
    return cast(BackgroundService, poller)
