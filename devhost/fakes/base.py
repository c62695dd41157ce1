"""What both fake providers share: the server thread, failure switches, request log and webhooks.

A provider subclass adds its routes, its authentication, its error body and its webhook signature.
Routes under /__control are the fake's own test API: no faults, no provider authentication.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

from aiohttp import web

from devhost.fakes.faults import Faults
from devhost.fakes.runtime import ServerThread
from devhost.fakes.webhooks import Delivery, OutgoingEvent, WebhookSender

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CONTROL_PREFIX = "/__control"


@dataclass(frozen=True)
class RecordedRequest:
    route: str
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


class ProviderError(Exception):
    """Raised by a handler to answer with the provider's error body."""

    def __init__(self, status: int, body: Mapping[str, Any]) -> None:
        super().__init__(json.dumps(body))
        self.status = status
        self.body = body


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


class FakeProvider:
    """Start with `start()` or `with`; `url` is the base URL to give the SDK."""

    def __init__(self, *, port: int = 0, webhook_url: str | None = None) -> None:
        self._port = port
        self._initial_webhook_url = webhook_url
        self.faults = Faults()
        self.webhooks = WebhookSender(sign=self.sign_webhook, url=webhook_url)
        self.requests: list[RecordedRequest] = []
        # Exceptions in the fake itself (answered 500 by aiohttp): a test must not mistake them for a
        # provider outage, so the pytest fixtures fail a test that caused one.
        self.internal_errors: list[BaseException] = []
        self._server: ServerThread | None = None
        self._in_flight = 0
        self._idle: asyncio.Event | None = None

    # --- subclass hooks -------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def authenticate(self, request: web.Request) -> None:
        """Raise ProviderError (401) unless the request carries the right credentials."""
        raise NotImplementedError

    def server_error(self, status: int) -> ProviderError:
        """The provider's body for an injected 5xx."""
        raise NotImplementedError

    def unknown_route(self) -> ProviderError:
        raise NotImplementedError

    def reset_state(self) -> None:
        """Forget every provider object and restore the provider's switches (also initialises them)."""
        raise NotImplementedError

    def sign_webhook(self, event: OutgoingEvent) -> Mapping[str, str]:
        """The headers of one delivery attempt of `event` (signature, event id)."""
        raise NotImplementedError

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Self:
        app = web.Application(middlewares=[self._middleware])
        self.add_routes(app)
        app.on_cleanup.append(self._close_webhooks)
        self._server = ServerThread(app, port=self._port)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The SDK's base URL (no /v1: both SDKs add it)."""
        return self._running().url

    def _running(self) -> ServerThread:
        if self._server is None:
            raise RuntimeError("the fake is not started")
        return self._server

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the fake's loop (where its state lives) and return its result."""
        return self._running().call(coro)

    async def acall(self, coro: Coroutine[Any, Any, T]) -> T:
        """`call()` for code on another event loop (async tests): `await fake.acall(fake.pay_async(...))`."""
        return await self._running().call_async(coro)

    def reset(self) -> None:
        """Back to just after start: no objects, requests, faults, events or switches (same URL and keys)."""
        self.call(self._reset())

    async def _reset(self) -> None:
        await self._wait_idle()
        await self.webhooks.reset(self._initial_webhook_url)
        self.faults.reset()
        self.requests.clear()
        self.internal_errors.clear()
        self.reset_state()

    async def _close_webhooks(self, _app: web.Application) -> None:
        await self.webhooks.close()

    # --- webhook controls -----------------------------------------------------------------------

    def set_webhook_url(self, url: str | None) -> None:
        self.webhooks.url = url

    def set_webhook_duplicates(self, extra_copies: int) -> None:
        """Deliver every following event 1 + `extra_copies` times."""
        self.webhooks.duplicates = extra_copies

    def set_webhook_retries(self, *delays_s: float) -> None:
        """Retry a failed delivery after each of `delays_s` in turn (none: failures are only logged)."""
        self.webhooks.retry_delays = list(delays_s)

    def hold_webhooks(self) -> None:
        """Keep events back until `release_webhooks()` (to deliver them out of order)."""
        self.call(self._hold())

    async def _hold(self) -> None:
        self.webhooks.hold()

    def release_webhooks(self, order: Literal["fifo", "reverse", "shuffle"] = "reverse") -> None:
        self.call(self.webhooks.release(order))

    def wait_for_webhooks(self) -> list[Delivery]:
        """Wait until events caused by API calls (refunds, cancels) were delivered; all deliveries."""
        self.call(self.webhooks.settle())
        return list(self.webhooks.deliveries)

    def redeliver(self, event_id: str) -> Delivery:
        """POST a sent event once more, freshly signed (a provider retry)."""
        return self.call(self.webhooks.redeliver(event_id))

    @property
    def deliveries(self) -> list[Delivery]:
        return list(self.webhooks.deliveries)

    def wait_for_requests(self) -> None:
        """Wait until no API request is being handled (e.g. one hung by `faults.hang_next`)."""
        self.call(self._wait_idle())

    async def _wait_idle(self) -> None:
        while self._in_flight:
            self._idle = self._idle or asyncio.Event()
            await self._idle.wait()

    def app_env(self) -> dict[str, str]:
        """The environment variables that point the app at this fake (its base URL and credentials)."""
        raise NotImplementedError

    # --- the control API over HTTP (for a fake running as a process) -----------------------------

    def add_control_routes(self, app: web.Application) -> None:
        app.router.add_get(f"{CONTROL_PREFIX}/webhooks", self._control_deliveries)
        app.router.add_post(f"{CONTROL_PREFIX}/webhooks", self._control_webhooks)
        app.router.add_post(f"{CONTROL_PREFIX}/webhooks/release", self._control_release)
        app.router.add_post(f"{CONTROL_PREFIX}/faults", self._control_faults)
        app.router.add_delete(f"{CONTROL_PREFIX}/faults", self._control_clear_faults)
        app.router.add_post(f"{CONTROL_PREFIX}/reset", self._control_reset)

    async def _control_deliveries(self, _request: web.Request) -> web.Response:
        await self.webhooks.settle()
        return json_response(self.webhooks.describe())

    async def _control_webhooks(self, request: web.Request) -> web.Response:
        """{"url": ..., "duplicates": n, "retries": [s, ...], "hold": true|false}: each key optional."""
        payload = await request.json()
        if "url" in payload:
            self.webhooks.url = payload["url"]
        if "duplicates" in payload:
            self.webhooks.duplicates = int(payload["duplicates"])
        if "retries" in payload:
            self.webhooks.retry_delays = [float(s) for s in payload["retries"]]
        if payload.get("hold"):
            self.webhooks.hold()
        return json_response({"url": self.webhooks.url, "duplicates": self.webhooks.duplicates})

    async def _control_release(self, request: web.Request) -> web.Response:
        payload = await request.json() if request.can_read_body else {}
        await self.webhooks.release(payload.get("order", "reverse"))
        return json_response(self.webhooks.describe())

    async def _control_faults(self, request: web.Request) -> web.Response:
        """{"route": "POST /v1/orders", "fail_next": n, "status": 503} or {"hang_next": n, "seconds": s}
        or {"delay": s}."""
        payload = await request.json()
        route = payload.get("route", "*")
        if "fail_next" in payload:
            self.faults.fail_next(route, int(payload["fail_next"]), status=int(payload.get("status", 500)))
        if "hang_next" in payload:
            seconds, happen = float(payload.get("seconds", 5.0)), bool(payload.get("happen", True))
            self.faults.hang_next(route, int(payload["hang_next"]), seconds=seconds, happen=happen)
        if "delay" in payload:
            self.faults.delay(route, float(payload["delay"]))
        return json_response({"route": route})

    async def _control_clear_faults(self, _request: web.Request) -> web.Response:
        self.faults.clear()
        return json_response({})

    async def _control_reset(self, _request: web.Request) -> web.Response:
        await self._reset()
        return json_response({})

    # --- HTTP -----------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):
            try:
                return await handler(request)
            except ProviderError as exc:
                return json_response(exc.body, status=exc.status)
            except (KeyError, ValueError) as exc:  # a control used on an unknown object or in the wrong state
                return json_response({"error": {"message": f"{type(exc).__name__}: {exc}"}}, status=400)
            except Exception as exc:
                self.internal_errors.append(exc)
                raise
        resource = request.match_info.route.resource
        route = f"{request.method} {resource.canonical if resource is not None else request.path}"
        body = await request.read()
        self.requests.append(RecordedRequest(route, request.method, request.path, dict(request.headers), body))
        decision = self.faults.decide(route)
        self._in_flight += 1
        try:
            if resource is None:
                raise self.unknown_route()
            if decision.delay:
                await asyncio.sleep(decision.delay)
            if decision.error_status is not None:
                raise self.server_error(decision.error_status)
            self.authenticate(request)
            return await handler(request)
        except ProviderError as exc:
            return json_response(exc.body, status=exc.status)
        except web.HTTPException:
            raise
        except Exception as exc:
            self.internal_errors.append(exc)
            raise
        finally:
            self._in_flight -= 1
            if not self._in_flight and self._idle is not None:
                self._idle.set()
                self._idle = None
