"""The HTTP conventions: body validation, problem+json for every error, opaque 500s."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import azure.functions as func
import pytest
from pydantic import BaseModel, ConfigDict, Field

from shared.db.errors import to_domain_error
from shared.errors import AlreadyExists, Conflict, NotFound, ReferenceNotFound, TooManyRequests
from shared.http.auth import ANONYMOUS
from shared.http.endpoint import ApiRequest, blueprint, endpoint


class Greeting(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    times: int = Field(ge=1, le=3)


class SlotTaken(Conflict):
    code = "slot_taken"
    title = "The slot is taken"


class FakeContext:
    invocation_id = "inv-123"
    function_name = "test"
    function_directory = "."
    trace_context = None
    retry_context = None
    thread_local_storage = None


HttpFunction = Callable[..., Awaitable[func.HttpResponse]]


def register(handler: Callable[[ApiRequest[Any]], Awaitable[Any]], **options: Any) -> HttpFunction:
    bp = blueprint()
    endpoint(bp, name="probe", route="probe", method="POST", **{"auth": ANONYMOUS, **options})(handler)
    app = func.FunctionApp()
    app.register_functions(bp)
    (function,) = app.get_functions()
    user_function: HttpFunction = function.get_user_function()
    return user_function


async def call(function: HttpFunction, body: bytes = b"", headers: dict[str, str] | None = None) -> func.HttpResponse:
    request = func.HttpRequest("POST", "http://localhost/api/probe?x=1", headers=headers or {}, body=body)
    return await function(req=request, context=FakeContext())


def problem_of(response: func.HttpResponse) -> dict[str, Any]:
    assert response.mimetype == "application/problem+json"
    document: dict[str, Any] = json.loads(response.get_body())
    assert document["status"] == response.status_code
    assert document["type"] == "urn:codeconnect:problem:" + document["code"]
    assert document["instance"] == "/api/probe"
    return document


async def greet(request: ApiRequest[Greeting]) -> dict[str, str]:
    assert request.body is not None
    return {"greeting": " ".join(["hello " + request.body.name] * request.body.times)}


async def test_a_valid_body_reaches_the_handler_parsed() -> None:
    response = await call(register(greet, body=Greeting, status=201), json.dumps({"name": "ana", "times": 2}).encode())
    assert response.status_code == 201
    assert response.mimetype == "application/json"
    assert json.loads(response.get_body()) == {"greeting": "hello ana hello ana"}


async def test_validation_errors_report_locations_and_types_only() -> None:
    response = await call(register(greet, body=Greeting), json.dumps({"name": "", "times": 9, "x": "secret"}).encode())
    assert response.status_code == 422
    document = problem_of(response)
    assert document["code"] == "validation_failed"
    assert sorted(document["errors"], key=lambda e: e["loc"]) == [
        {"loc": ["name"], "type": "string_too_short"},
        {"loc": ["times"], "type": "less_than_equal"},
        {"loc": ["x"], "type": "extra_forbidden"},
    ]
    assert "secret" not in response.get_body().decode()


@pytest.mark.parametrize("body", [b"", b"null", b"[]"])
async def test_a_missing_or_non_object_body_is_422(body: bytes) -> None:
    response = await call(register(greet, body=Greeting), body)
    assert response.status_code == 422
    assert problem_of(response)["errors"][0]["loc"] == []


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe",
        b'{"times": ' + b"1" * 4301 + b"}",  # beyond Python's int-from-string digit limit: ValueError
        b"[" * 100_000 + b"]" * 100_000,  # beyond the recursion limit: RecursionError
    ],
    ids=["syntax", "not-utf8", "huge-integer", "deep-nesting"],
)
async def test_malformed_json_is_400(body: bytes) -> None:
    response = await call(register(greet, body=Greeting), body)
    assert response.status_code == 400
    assert problem_of(response)["code"] == "malformed_json"


async def test_a_non_json_content_type_is_415() -> None:
    response = await call(
        register(greet, body=Greeting), b"name=ana", {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 415
    assert problem_of(response)["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (NotFound("no such mentor"), 404, "not_found"),
        (SlotTaken(), 409, "slot_taken"),
        (AlreadyExists(), 409, "already_exists"),
        (TooManyRequests(retry_after_s=7), 429, "rate_limited"),
    ],
)
async def test_domain_errors_map_by_class(error: Exception, status: int, code: str) -> None:
    async def fail(_: ApiRequest[Any]) -> None:
        raise error

    response = await call(register(fail))
    assert response.status_code == status
    assert problem_of(response)["code"] == code
    if status == 429:
        assert response.headers["Retry-After"] == "7"


async def test_unhandled_errors_are_opaque_and_carry_the_invocation_id(caplog: pytest.LogCaptureFixture) -> None:
    async def crash(_: ApiRequest[Any]) -> None:
        raise RuntimeError("password=hunter2 at /srv/app.py line 3")

    with caplog.at_level(logging.ERROR):
        response = await call(register(crash))
    assert response.status_code == 500
    document = problem_of(response)
    assert document["traceId"] == "inv-123"
    assert "hunter2" not in response.get_body().decode()
    assert "Traceback" not in response.get_body().decode()
    assert any("hunter2" in (r.exc_text or "") or r.exc_info for r in caplog.records)


async def test_a_none_reply_is_204() -> None:
    async def nothing(_: ApiRequest[Any]) -> None:
        return None

    response = await call(register(nothing))
    assert response.status_code == 204


def test_constraint_errors_map_to_domain_errors() -> None:
    unique = asyncpg.UniqueViolationError("duplicate key")
    foreign = asyncpg.ForeignKeyViolationError("missing parent")
    exclusion = asyncpg.ExclusionViolationError("overlap")
    assert isinstance(to_domain_error(unique), AlreadyExists)
    assert isinstance(to_domain_error(foreign), ReferenceNotFound)
    assert to_domain_error(foreign) is not None and to_domain_error(foreign).status == 422  # type: ignore[union-attr]
    assert isinstance(to_domain_error(exclusion), Conflict)
    assert to_domain_error(ValueError("x")) is None


async def test_route_id_reads_a_uuid_and_a_malformed_one_names_nothing() -> None:
    seen: list[Any] = []

    async def handler(request: ApiRequest[None]) -> None:
        seen.append(request.route_id())

    function = register(handler)
    for raw, status in (("0b9ec1d4-5d52-4a0e-9a55-4f3b0c1e2d3f", 204), ("not-a-uuid", 404), ("", 404)):
        request = func.HttpRequest("POST", "http://localhost/api/probe", body=b"", route_params={"id": raw})
        response = await function(req=request, context=FakeContext())
        assert response.status_code == status
    assert [str(value) for value in seen] == ["0b9ec1d4-5d52-4a0e-9a55-4f3b0c1e2d3f"]
    assert problem_of(response)["code"] == "not_found"
