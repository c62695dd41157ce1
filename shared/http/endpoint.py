"""`@endpoint`: one HTTP-triggered function per route, with the API's conventions in one place.

A handler is an `async def handler(request: ApiRequest) -> Reply`. The decorator registers it on
the blueprint as a function named `name`, parses and validates the JSON body into the declared
pydantic model, serialises what the handler returns, and turns every error into problem+json.
Public client routes are ANONYMOUS at the Functions level: the app authenticates its users itself,
and every route declares who may call it (`auth=`, see shared/http/auth.py); the caller's principal
is then on `request.principal`.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import azure.durable_functions as df
import azure.functions as func
from pydantic import BaseModel, ValidationError

from shared import logs
from shared.auth.principal import Principal
from shared.errors import DomainError, NotFound
from shared.http import problems
from shared.http.auth import Access, Authenticator, authenticate_bearer, principal_for

logger = logging.getLogger(__name__)

Body = TypeVar("Body")
Model = TypeVar("Model", bound=BaseModel)
Reply = BaseModel | Mapping[str, Any] | list[Any] | bytes | func.HttpResponse | None
JSON = "application/json"


@dataclass(frozen=True)
class ApiRequest(Generic[Body]):
    http: func.HttpRequest
    invocation_id: str
    body: Body | None = None
    principal: Principal | None = None
    # The DurableOrchestrationClient of routes declared with `durable_client=True`.
    durable: Any = None

    @property
    def user(self) -> Principal:
        """The signed-in caller (routes that are not ANONYMOUS always have one)."""
        if self.principal is None:
            raise RuntimeError("this route is anonymous; it has no principal")
        return self.principal

    @property
    def client_ip(self) -> str:
        """The client address the front end reports (last X-Forwarded-For hop), else "unknown"."""
        forwarded = self.http.headers.get("x-forwarded-for") or ""
        last = forwarded.split(",")[-1].strip()
        if last.startswith("["):  # [ipv6]:port
            return last[1:].split("]", 1)[0]
        return last.rsplit(":", 1)[0] if last.count(":") == 1 else (last or "unknown")

    @property
    def route_params(self) -> Mapping[str, str]:
        return cast(Mapping[str, str], self.http.route_params)

    def route_id(self, name: str = "id") -> uuid.UUID:
        """The route parameter `name` as a UUID; anything else names no resource, so 404. (A route
        with `{id:guid}` never gets anything else: the host does not match it.)"""
        try:
            return uuid.UUID(self.route_params.get(name, ""))
        except ValueError:
            raise NotFound() from None

    @property
    def query(self) -> Mapping[str, str]:
        return cast(Mapping[str, str], self.http.params)


Handler = Callable[[ApiRequest[Any]], Awaitable[Reply]]


class _MalformedBody(DomainError):
    status = 400
    code = "malformed_json"
    title = "The request body is not valid JSON"


class _UnsupportedMediaType(DomainError):
    status = 415
    code = "unsupported_media_type"
    title = "Send the request body as application/json"


def blueprint() -> func.Blueprint:
    """A blueprint for one feature's functions.

    A Durable blueprint (a superset of func.Blueprint), so any route may take the Durable client
    (`endpoint(..., durable_client=True)`).
    """
    durable_blueprint: func.Blueprint = df.Blueprint(http_auth_level=func.AuthLevel.ANONYMOUS)
    return durable_blueprint


def endpoint(
    blueprint: func.Blueprint,
    *,
    name: str,
    route: str,
    method: str,
    auth: Access,
    body: type[BaseModel] | None = None,
    status: int = 200,
    authenticator: Authenticator = authenticate_bearer,
    durable_client: bool = False,
) -> Callable[[Handler], Handler]:
    """Register `handler` as the function `name` serving `method route` (route without the api prefix).

    `auth` is required so that every route states who may call it; the guard runs before the body
    is read. With `durable_client`, `blueprint` must be a Durable blueprint (`df.Blueprint`): the
    function gets the Durable client input binding and the handler finds the client on
    `request.durable`.
    """

    def register(handler: Handler) -> Handler:
        async def serve(req: func.HttpRequest, context: func.Context, durable: Any) -> func.HttpResponse:
            token = logs.invocation_id.set(context.invocation_id)
            instance = _path(req.url)
            try:
                principal = await principal_for(auth, req.headers, authenticator)
                parsed = _parse_body(req, body) if body is not None else None
                reply = await handler(ApiRequest(req, context.invocation_id, parsed, principal, durable))
                return _to_response(reply, status)
            except DomainError as exc:
                return problems.from_domain_error(exc, instance=instance)
            except ValidationError as exc:
                return problems.from_validation_error(exc, instance=instance)
            except Exception:
                logger.exception("unhandled error in %s", name, extra={"invocation_id": context.invocation_id})
                return problems.internal_error(context.invocation_id, instance=instance)
            finally:
                logs.invocation_id.reset(token)

        function: Callable[..., Awaitable[func.HttpResponse]]
        if durable_client:

            async def durable_function(req: func.HttpRequest, context: func.Context, client: Any) -> func.HttpResponse:
                return await serve(req, context, client)

            function = durable_function
        else:

            async def http_function(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
                return await serve(req, context, None)

            function = http_function
        function.__name__ = function.__qualname__ = name
        bound = blueprint.durable_client_input(client_name="client")(function) if durable_client else function
        blueprint.function_name(name)(
            blueprint.route(route=route, methods=[method], auth_level=func.AuthLevel.ANONYMOUS)(bound)
        )
        return handler

    return register


def _parse_body(req: func.HttpRequest, model: type[Model]) -> Model:
    content_type = req.headers.get("content-type", JSON).split(";")[0].strip().lower()
    if content_type != JSON and not content_type.endswith("+json"):
        raise _UnsupportedMediaType()
    raw = req.get_body() or b"null"
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        # ValueError: bad syntax or encoding (JSONDecodeError, UnicodeDecodeError), or an integer
        # beyond Python's 4,300-digit conversion limit; RecursionError: nesting deeper than the stack.
        raise _MalformedBody() from None
    return model.model_validate(data)


def _to_response(reply: Reply, status: int) -> func.HttpResponse:
    if isinstance(reply, func.HttpResponse):
        return reply
    if reply is None:
        return func.HttpResponse(status_code=204 if status == 200 else status)
    if isinstance(reply, BaseModel):
        payload: bytes = reply.model_dump_json().encode()
    elif isinstance(reply, bytes):
        payload = reply
    else:
        payload = json.dumps(reply).encode()
    return func.HttpResponse(payload, status_code=status, mimetype=JSON, charset="utf-8")


def _path(url: str) -> str:
    rest = url.split("://", 1)[-1]
    path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    return path.split("?", 1)[0]
