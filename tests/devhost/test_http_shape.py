"""What a function sees and what the client gets, through a real HostThread over real HTTP."""

from __future__ import annotations

import http.client
import json
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from devhost.host import ServiceContext
from devhost.http_server import FunctionKeys
from devhost.testing import HostThread

APPS = Path(__file__).parent / "apps"


class Reply:
    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def header_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)


def send(
    base_url: str,
    method: str,
    path: str,
    *,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes | None = None,
) -> Reply:
    """One request with full control over repeated headers and the raw path."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return Reply(response.status, response.getheaders(), response.read())
    finally:
        connection.close()


FIRED: list[tuple[str, str]] = []


def recording_dispatcher(ctx: ServiceContext) -> None:
    async def fire(name: str, text: str) -> None:
        FIRED.append((name, text))

    ctx.register_fire("timerTrigger", fire)


@pytest.fixture(scope="module")
def shape() -> Iterator[HostThread]:
    with HostThread(APPS / "shape", services=[recording_dispatcher]) as host:
        yield host


@pytest.fixture(scope="module")
def keyed() -> Iterator[HostThread]:
    keys = FunctionKeys(
        master="master-key", host_keys={"default": "host-key"}, function_keys={"function_level": {"k": "fn-key"}}
    )
    with HostThread(APPS / "shape", enforce_keys=True, keys=keys, services=[recording_dispatcher]) as host:
        yield host


def test_repeated_query_keys_are_joined_and_empty_values_dropped(shape: HostThread) -> None:
    reply = send(shape.url, "GET", "/api/echo?x=1&x=2&empty=&bare&y=%20&z=&z=3&Q=a&q=b")
    assert reply.status == 200
    seen = reply.json()
    assert seen["params"] == {"x": "1,2", "y": " ", "z": "3", "Q": "a,b"}
    assert seen["url"] == f"{shape.url}/api/echo?x=1&x=2&empty=&bare&y=%20&z=&z=3&Q=a&q=b"
    assert seen["method"] == "GET"


def test_headers_are_lower_cased_and_repeated_ones_joined(shape: HostThread) -> None:
    reply = send(
        shape.url,
        "GET",
        "/api/echo",
        headers=[("X-Multi", "a"), ("x-multi", "b"), ("X-Case", "KeepValue"), ("X-Empty", "")],
    )
    headers = reply.json()["headers"]
    assert headers["x-multi"] == "a,b"
    assert headers["x-case"] == "KeepValue"
    assert all(name == name.lower() for name in headers)


def test_route_values_only_non_null(shape: HostThread) -> None:
    assert send(shape.url, "GET", "/api/echo/5").json()["route_params"] == {"id": "5"}
    assert send(shape.url, "GET", "/api/echo").json()["route_params"] == {}
    assert send(shape.url, "GET", "/api/ECHO/7").json()["route_params"] == {"id": "7"}
    assert send(shape.url, "GET", "/api/files/a/b/c.txt").json()["route_params"] == {"path": "a/b/c.txt"}


def test_body_is_always_bytes(shape: HostThread) -> None:
    empty = send(shape.url, "POST", "/api/echo").json()
    assert empty["body_hex"] == "" and empty["body_is_bytes"] is True
    binary = bytes(range(256)) * 3
    seen = send(shape.url, "POST", "/api/echo", body=binary, headers=[("Content-Type", "application/json")]).json()
    assert bytes.fromhex(seen["body_hex"]) == binary


def test_large_body_is_delivered(shape: HostThread) -> None:
    payload = b"x" * (3 * 1024 * 1024)  # above aiohttp's 1 MiB default, below the host's 100 MB
    seen = send(shape.url, "PUT", "/api/echo", body=payload).json()
    assert len(seen["body_hex"]) == 2 * len(payload)


def test_json_body_is_not_pre_parsed(shape: HostThread) -> None:
    good = send(shape.url, "POST", "/api/json", body=b'{"a": [1, 2]}', headers=[("Content-Type", "application/json")])
    assert good.status == 200 and good.json() == {"parsed": {"a": [1, 2]}}
    bad = send(shape.url, "POST", "/api/json", body=b"{not json", headers=[("Content-Type", "application/json")])
    assert bad.status == 400
    assert bad.json() == {"error": "HTTP request does not contain valid JSON data"}


def test_str_return_is_plain_text(shape: HostThread) -> None:
    reply = send(shape.url, "GET", "/api/text")
    assert reply.status == 200 and reply.body == b"plain text"
    assert reply.header("Content-Type") == "text/plain; charset=utf-8"


def test_none_return_and_exceptions_are_500_with_empty_body(shape: HostThread) -> None:
    for path in ("/api/nothing", "/api/boom"):
        reply = send(shape.url, "GET", path)
        assert (reply.status, reply.body) == (500, b"")


def test_http_response_headers_and_cookies(shape: HostThread) -> None:
    reply = send(shape.url, "GET", "/api/cookies")
    assert reply.status == 201 and reply.body == b"ok"
    assert reply.header("X-Custom") == "yes"
    assert reply.header("Content-Type") == "text/plain; charset=utf-8"
    assert reply.header_all("Set-Cookie") == [
        "session=abc123; path=/app; secure; samesite=lax; httponly",
        "theme=dark; path=/",
    ]


def test_head_on_a_get_route(shape: HostThread) -> None:
    reply = send(shape.url, "HEAD", "/api/text")
    assert reply.status == 200 and reply.body == b""


def test_wrong_method_failed_constraint_and_unknown_paths_are_404(shape: HostThread) -> None:
    assert send(shape.url, "GET", "/api/items/12").body == b"item 12"
    for method, path in [
        ("POST", "/api/items/12"),
        ("GET", "/api/items/abc"),
        ("GET", "/api/items/99999999999"),
        ("DELETE", "/api/echo"),
        ("GET", "/api/nope"),
        ("GET", "/items/12"),
    ]:
        assert send(shape.url, method, path).status == 404, (method, path)


def test_context_is_injected(shape: HostThread) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    seen = send(shape.url, "GET", "/api/whoami", headers=[("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01")]).json()
    assert seen["function_name"] == "whoami"
    assert uuid.UUID(seen["invocation_id"])
    assert seen["trace_parent"].split("-")[1] == trace_id
    again = send(shape.url, "GET", "/api/whoami").json()
    assert again["invocation_id"] != seen["invocation_id"]


async def _extra(request: web.Request) -> web.Response:
    return web.Response(text="mounted")


def test_route_prefix_from_host_json_and_extra_routes() -> None:
    with HostThread(APPS / "prefixed", extra_routes=[web.get("/durabletask/ping", _extra)]) as host:
        assert host.host.config.route_prefix == "v1/public"
        assert send(host.url, "GET", "/v1/public/ping").body == b"pong"
        assert send(host.url, "GET", "/api/ping").status == 404
        assert send(host.url, "GET", "/durabletask/ping").body == b"mounted"


def test_keys_are_not_enforced_by_default(shape: HostThread) -> None:
    assert send(shape.url, "GET", "/api/secret/fn").status == 200
    assert send(shape.url, "GET", "/api/secret/admin").status == 200


def test_keys_enforced_with_the_flag(keyed: HostThread) -> None:
    def status(path: str, headers: Sequence[tuple[str, str]] = ()) -> int:
        return send(keyed.url, "GET", path, headers=headers).status

    assert status("/api/text") == 200  # ANONYMOUS
    assert status("/api/secret/fn") == 401
    assert status("/api/secret/fn?code=wrong") == 401
    assert status("/api/secret/fn?code=host-key") == 200
    assert status("/api/secret/fn", [("x-functions-key", "fn-key")]) == 200
    assert status("/api/secret/fn?code=master-key") == 200
    assert status("/api/secret/admin?code=host-key") == 401
    assert status("/api/secret/admin", [("x-functions-key", "master-key")]) == 200


def _wait_for_fired(expected: tuple[str, str]) -> None:
    deadline = time.monotonic() + 5
    while expected not in FIRED:
        assert time.monotonic() < deadline, f"{expected} was not fired: {FIRED}"
        time.sleep(0.01)


def test_admin_api_fires_non_http_functions(shape: HostThread) -> None:
    reply = send(shape.url, "POST", "/admin/functions/yearly", body=b'{"input": "manual"}')
    assert reply.status == 202
    _wait_for_fired(("yearly", "manual"))
    assert send(shape.url, "POST", "/admin/functions/missing", body=b"{}").status == 404
    assert send(shape.url, "POST", "/admin/functions/text", body=b"{}").status == 400
    assert send(shape.url, "POST", "/admin/functions/yearly", body=b"{oops").status == 400


def test_admin_api_needs_the_master_key_when_enforced(keyed: HostThread) -> None:
    path = "/admin/functions/yearly"
    assert send(keyed.url, "POST", path, body=b'{"input": "k"}').status == 401
    assert send(keyed.url, "POST", f"{path}?code=host-key", body=b'{"input": "k"}').status == 401
    reply = send(keyed.url, "POST", path, body=b'{"input": "k"}', headers=[("x-functions-key", "master-key")])
    assert reply.status == 202
    _wait_for_fired(("yearly", "k"))
