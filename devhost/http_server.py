"""The host's HTTP front end on aiohttp: function routes, keys and Core Tools' admin API.

A request to a function route becomes the Datum the host sends the worker (`ToRpcHttp`, with the
Python worker's `RawHttpBodyBytes`/`RpcHttpBodyOnly` capabilities):
- `url` = scheme://host + path + query string;
- header names lower-cased, repeated headers joined with ",";
- query values joined with ","; empty values dropped (`?x=` and `?x` never reach Python), like
  .NET's `StringValues.ToString()` followed by the host's `IsNullOrEmpty` check;
- `params` = the non-null route values;
- `body` = the raw bytes, `b''` when there is none.

It is decoded by the worker's own `httpTrigger` converter (through the Invoker) and the result is
encoded by the `http` converter, so functions see and return exactly what they would in Azure.
A failed invocation answers 500 with an empty body, like the host.

Approximation: a `str` return is sent as `text/plain; charset=utf-8` with status 200. The host's
content negotiation would send a str holding JSON as `application/json`; return an `HttpResponse`
to control the content type.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.cookies import Morsel, SimpleCookie
from typing import Any
from urllib.parse import quote

from aiohttp import web
from azure.functions.meta import Datum

from devhost.invoker import InvocationError, Invoker
from devhost.loader import FunctionSpec, binding_converter
from devhost.routing import RouteMatch, Router

log = logging.getLogger("devhost.http")

# FUNCTIONS_REQUEST_BODY_SIZE_LIMIT's default in the host: 100 MB.
MAX_BODY_BYTES = 104_857_600
# How long the host holds a request that arrives before it is running (ScriptConstants.HostTimeoutSeconds).
HOST_START_TIMEOUT_S = 30.0

FireCallback = Callable[[str, str], Awaitable[None]]
InputsCallback = Callable[[FunctionSpec], Mapping[str, Any]]


@dataclass(frozen=True)
class FunctionKeys:
    """Keys checked when enforcement is on: the master key, host keys and per-function keys."""

    master: str
    host_keys: Mapping[str, str] = field(default_factory=dict)
    function_keys: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @classmethod
    def generate(cls) -> FunctionKeys:
        """Random master and `default` host keys (print them for the developer)."""
        return cls(master=secrets.token_urlsafe(32), host_keys={"default": secrets.token_urlsafe(32)})

    def authorized(self, auth_level: str, function_name: str | None, presented: str | None) -> bool:
        """ANONYMOUS needs nothing, FUNCTION any function/host/master key, ADMIN the master key."""
        level = auth_level.upper()
        if level == "ANONYMOUS":
            return True
        if not presented:
            return False
        candidates = [self.master]
        if level == "FUNCTION":
            candidates += list(self.host_keys.values())
            if function_name is not None:
                for name, keys in self.function_keys.items():
                    if name.lower() == function_name.lower():
                        candidates += list(keys.values())
        elif level != "ADMIN":
            return False
        matched = False
        for candidate in candidates:  # compare all, in constant time each
            matched |= hmac.compare_digest(candidate.encode(), presented.encode())
        return matched


def _join_non_empty(values: Iterable[str]) -> str:
    return ",".join(v for v in values if v)


def _grouped(items: Iterable[tuple[str, str]], *, lower_keys: bool) -> dict[str, list[str]]:
    """Group repeated keys case-insensitively, keeping the first spelling (or lower-casing)."""
    groups: dict[str, list[str]] = {}
    spelling: dict[str, str] = {}
    for key, value in items:
        folded = key.lower()
        name = spelling.setdefault(folded, folded if lower_keys else key)
        groups.setdefault(name, []).append(value)
    return groups


def build_http_datum(
    *,
    method: str,
    url: str,
    headers: Iterable[tuple[str, str]],
    query: Iterable[tuple[str, str]],
    route_params: Mapping[str, str],
    body: bytes,
) -> Datum:
    """The RpcHttp-shaped Datum the host would send for this request."""
    header_map = {k: _join_non_empty(v) for k, v in _grouped(headers, lower_keys=True).items()}
    query_map = {k: _join_non_empty(v) for k, v in _grouped(query, lower_keys=False).items()}
    return Datum(
        type="http",
        value={
            "method": Datum(method.upper(), "string"),
            "url": Datum(url, "string"),
            "headers": {k: Datum(v, "string") for k, v in header_map.items()},
            "query": {k: Datum(v, "string") for k, v in query_map.items() if v},
            "params": {k: Datum(v, "string") for k, v in route_params.items()},
            "body": Datum(body, "bytes"),
        },
    )


def _set_cookie_header(name: str, morsel: Morsel[str]) -> str:
    """Format like ASP.NET's `Response.Cookies.Append` (value escaped, path defaulting to /)."""
    parts = [f"{name}={quote(morsel.value, safe='')}"]
    expires = morsel["expires"]
    if expires:
        # The worker parses this exact format; anything else fails the invocation there too.
        when = datetime.strptime(expires, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
        parts.append(f"expires={format_datetime(when, usegmt=True)}")
    if morsel["max-age"]:
        parts.append(f"max-age={int(float(morsel['max-age']))}")
    if morsel["domain"]:
        parts.append(f"domain={morsel['domain']}")
    parts.append(f"path={morsel['path'] or '/'}")
    if morsel["secure"]:
        parts.append("secure")
    same_site = str(morsel["samesite"] or "").lower()
    if same_site in ("lax", "strict", "none"):
        parts.append(f"samesite={same_site}")
    if morsel["httponly"]:
        parts.append("httponly")
    return "; ".join(parts)


def response_from_result(result: Any) -> web.Response:
    """Encode a function's return value with the worker's `http` converter, then send it like the host."""
    datum = binding_converter("http").encode(result, expected_type=None)
    if datum.type == "string":
        return web.Response(
            status=200, body=datum.value.encode(), headers={"Content-Type": "text/plain; charset=utf-8"}
        )
    if datum.type != "http":
        raise TypeError(f"unexpected Datum type {datum.type!r} from the http converter")
    value = datum.value
    response = web.Response(status=int(value["status_code"].value), body=value["body"].value or b"")
    for name, header in value["headers"].items():
        response.headers.add(name, header.value)
    for cookie in value.get("cookies") or []:
        assert isinstance(cookie, SimpleCookie)
        for name, morsel in cookie.items():
            response.headers.add("Set-Cookie", _set_cookie_header(name, morsel))
    return response


def _empty(status: int) -> web.Response:
    return web.Response(status=status, body=b"")


class HttpServer:
    """One aiohttp application serving function routes, the admin API and any extra routes."""

    def __init__(
        self,
        *,
        router: Router,
        functions: Mapping[str, FunctionSpec],
        invoker: Invoker,
        keys: FunctionKeys | None = None,
        dispatchers: Mapping[str, FireCallback] | None = None,
        inputs_for: InputsCallback | None = None,
        extra_routes: Sequence[web.AbstractRouteDef] = (),
        subapps: Mapping[str, web.Application] | None = None,
    ) -> None:
        self.router = router
        self.functions = {name.lower(): spec for name, spec in functions.items()}
        self.invoker = invoker
        self.keys = keys
        self.dispatchers = dispatchers if dispatchers is not None else {}
        self.inputs_for = inputs_for
        self._background: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._running = asyncio.Event()
        self.host_start_timeout_s = HOST_START_TIMEOUT_S
        self.app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[self._wait_for_running_host])
        self.app.router.add_routes(extra_routes)
        for prefix, subapp in (subapps or {}).items():
            self.app.add_subapp(prefix, subapp)
        self.app.router.add_post("/admin/functions/{name}", self._admin_invoke)
        self.app.router.add_get("/admin/host/status", self._admin_status)
        self.app.router.add_route("*", "/{tail:.*}", self._handle_function)

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> str:
        """Listen on host:port (0 picks a free port) and return the base URL.

        With `reuse_port`, several processes listen on the same port (SO_REUSEPORT) and the kernel
        spreads new connections across them.
        """
        self._runner = web.AppRunner(self.app, handle_signals=False, shutdown_timeout=5.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_port=reuse_port or None)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        return f"http://{shown}:{bound_port}"

    def mark_running(self) -> None:
        """Let requests through: the host calls this once every trigger service has started."""
        self._running.set()

    async def stop(self) -> None:
        """Stop listening, cancel admin-fired invocations and close connections."""
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- handlers --------------------------------------------------------------------------------

    @web.middleware
    async def _wait_for_running_host(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Hold requests that arrive while the host starts, as the host's WaitForRunningHostAsync does:
        the listener opens first (services need its URL), but no function or Durable API call runs
        before the services behind it are up. Past the timeout: 503, as the host answers."""
        if not self._running.is_set() and request.path != "/admin/host/status":
            try:
                await asyncio.wait_for(self._running.wait(), self.host_start_timeout_s)
            except TimeoutError:
                return web.Response(status=503, text="Function host is not running.")
        return await handler(request)

    def _presented_key(self, request: web.Request) -> str | None:
        return request.headers.get("x-functions-key") or request.query.get("code")

    def _allowed(self, request: web.Request, auth_level: str, function_name: str | None) -> bool:
        if self.keys is None:
            return True
        return self.keys.authorized(auth_level, function_name, self._presented_key(request))

    async def _handle_function(self, request: web.Request) -> web.StreamResponse:
        match = self.router.match(request.method, request.raw_path)
        if match is None:
            return _empty(404)
        spec = self.functions[match.route.name.lower()]
        if not self._allowed(request, str(spec.trigger.get("authLevel") or "FUNCTION"), spec.name):
            return _empty(401)
        return await self._invoke_http(request, spec, match)

    async def _invoke_http(self, request: web.Request, spec: FunctionSpec, match: RouteMatch) -> web.StreamResponse:
        body = await request.read()
        datum = build_http_datum(
            method=request.method,
            url=f"{request.scheme}://{request.host}{request.raw_path}",
            headers=request.headers.items(),
            query=request.query.items(),
            route_params=match.params,
            body=body,
        )
        outputs: dict[str, Any] = {}
        try:
            inputs = self.inputs_for(spec) if self.inputs_for and spec.input_bindings() else {}
            result = await self.invoker.invoke(
                spec,
                datum,
                {},
                inputs,
                outputs=outputs,
                trace_parent=request.headers.get("traceparent"),
                reason="This function was programmatically called via the host APIs.",
            )
        except InvocationError:
            return _empty(500)
        except Exception:
            log.exception("invoking %s failed before the function ran", spec.name)
            return _empty(500)
        if not spec.has_return:
            http_out = next((b["name"] for b in spec.output_bindings() if b.get("type") == "http"), None)
            result = outputs.get(http_out) if http_out else None
        try:
            return response_from_result(result)
        except Exception as exc:
            # The worker fails the invocation when encoding fails (e.g. a None return).
            log.error("Function 'Functions.%s' returned a value the http binding cannot encode: %r", spec.name, exc)
            return _empty(500)

    async def _admin_invoke(self, request: web.Request) -> web.StreamResponse:
        if not self._allowed(request, "ADMIN", None):
            return _empty(401)
        name = request.match_info["name"]
        spec = self.functions.get(name.lower())
        if spec is None:
            return _empty(404)
        try:
            payload = json.loads(await request.read() or b"{}")
        except ValueError:
            return web.json_response({"error": 'the body must be JSON like {"input": "..."}'}, status=400)
        text = payload.get("input") if isinstance(payload, dict) else None
        dispatcher = self.dispatchers.get(spec.trigger_type)
        if dispatcher is None:
            return web.json_response(
                {"error": f"{spec.trigger_type} function {spec.name} cannot be invoked through the admin API"},
                status=400,
            )
        task = asyncio.ensure_future(self._fire(dispatcher, spec.name, "" if text is None else str(text)))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return _empty(202)

    @staticmethod
    async def _fire(dispatcher: FireCallback, name: str, text: str) -> None:
        try:
            await dispatcher(name, text)
        except InvocationError:
            pass  # already logged by the invoker
        except Exception:
            log.exception("admin invocation of %s failed", name)

    async def _admin_status(self, request: web.Request) -> web.StreamResponse:
        if not self._allowed(request, "ADMIN", None):
            return _empty(401)
        state = "Running" if self._running.is_set() else "Initialized"
        return web.json_response({"state": state, "version": "devhost"})
