"""The Durable HTTP API (the extension's `HttpApiHandler`) and the durableClient binding JSON.

Served under both `/durabletask/` (the client's `rpcBaseUrl`) and `/runtime/webhooks/durabletask/`
(the management URLs an app hands to its callers), with the extension's status codes, headers and
body handling:
- start: the body (the client's `df_dumps` text as a JSON string literal) becomes
  ExecutionStarted.Input; an unknown orchestrator is 400 with `ExceptionMessage`; an id whose
  instance the host.json setting overridableExistingInstanceStates protects (by default: pending,
  running, continued-as-new, suspended) is 409 `{"Message": ...}`; so is restarting it in place.
- raiseEvent: the body is parsed once and re-serialized, so a dict given to the client's
  `raise_event` reaches the orchestrator as a str; non-JSON content types are 400.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from urllib.parse import quote

from aiohttp import web

from devhost.durable.engine import (
    DurableEngine,
    InstanceGoneError,
    InstanceNotFoundError,
    UnknownOrchestratorError,
)
from devhost.durable.protocol import RuntimeStatus, parse_timestamp
from devhost.durable.store import InstanceExistsError, InstanceQuery

RPC_PREFIX = "/durabletask"
WEBHOOK_PREFIX = "/runtime/webhooks/durabletask"
_JSON = "application/json"
_CONNECTION = "Storage"
_ALREADY_EXISTS = "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException"


def client_binding_json(engine: DurableEngine, base_url: str) -> str:
    """The durableClient input value (`BindingHelper.DurableOrchestrationClientToString`)."""
    base_url = base_url.rstrip("/")
    webhook = f"{base_url}{WEBHOOK_PREFIX}"
    return json.dumps(
        {
            "taskHubName": engine.hub,
            "creationUrls": {
                "createNewInstancePostUri": f"{webhook}/orchestrators/{{functionName}}[/{{instanceId}}]",
                "createAndWaitOnNewInstancePostUri": (
                    f"{webhook}/orchestrators/{{functionName}}[/{{instanceId}}]"
                    "?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}"
                ),
            },
            "managementUrls": management_urls(engine.hub, webhook, "INSTANCEID"),
            "baseUrl": webhook,
            "requiredQueryStringParameters": "",
            "rpcBaseUrl": f"{base_url}{RPC_PREFIX}/",
        }
    )


def management_urls(hub: str, webhook: str, instance_id: str) -> dict[str, str]:
    """The check-status payload (`HttpManagementPayload`); no `code=` because devhost has no keys."""
    instance = f"{webhook}/instances/{instance_id}"
    query = f"taskHub={hub}&connection={_CONNECTION}"
    return {
        "id": instance_id,
        "statusQueryGetUri": f"{instance}?{query}",
        "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{query}",
        "terminatePostUri": f"{instance}/terminate?reason={{text}}&{query}",
        "rewindPostUri": f"{instance}/rewind?reason={{text}}&{query}",
        "purgeHistoryDeleteUri": f"{instance}?{query}",
        "restartPostUri": f"{instance}/restart?{query}",
        "suspendPostUri": f"{instance}/suspend?reason={{text}}&{query}",
        "resumePostUri": f"{instance}/resume?reason={{text}}&{query}",
    }


def durable_routes(engine: DurableEngine) -> list[web.RouteDef]:
    """aiohttp routes for the Durable HTTP API under both prefixes."""
    api = _Api(engine)
    routes: list[web.RouteDef] = []
    for prefix in (RPC_PREFIX, WEBHOOK_PREFIX):
        routes += [
            web.post(prefix + "/orchestrators/{name}", api.start),
            web.post(prefix + "/orchestrators/{name}/{instance_id}", api.start),
            web.get(prefix + "/instances", api.list_instances),
            web.get(prefix + "/instances/", api.list_instances),
            web.delete(prefix + "/instances", api.purge_by),
            web.delete(prefix + "/instances/", api.purge_by),
            web.get(prefix + "/instances/{instance_id}", api.status),
            web.delete(prefix + "/instances/{instance_id}", api.purge),
            web.post(prefix + "/instances/{instance_id}/raiseEvent/{event}", api.raise_event),
            web.post(prefix + "/instances/{instance_id}/terminate", api.terminate),
            web.post(prefix + "/instances/{instance_id}/suspend", api.suspend),
            web.post(prefix + "/instances/{instance_id}/resume", api.resume),
            web.post(prefix + "/instances/{instance_id}/restart", api.restart),
            web.post(prefix + "/instances/{instance_id}/rewind", api.rewind),
        ]
    return routes


def _error(
    status: int, exception: str, exception_type: str, *, message: str = "An error has occurred."
) -> web.Response:
    body = {"Message": message, "ExceptionMessage": exception, "ExceptionType": exception_type}
    return web.json_response(body, status=status)


def _flag(request: web.Request, name: str, default: bool) -> bool:
    value = request.query.get(name)
    return default if value is None else value.strip().lower() == "true"


def _time(request: web.Request, name: str) -> datetime | None:
    value = request.query.get(name)
    return parse_timestamp(value) if value else None


def _query(request: web.Request) -> InstanceQuery:
    statuses = request.query.get("runtimeStatus")
    return InstanceQuery(
        created_from=_time(request, "createdTimeFrom"),
        created_to=_time(request, "createdTimeTo"),
        statuses=frozenset(s.strip() for s in statuses.split(",") if s.strip()) if statuses else None,
        prefix=request.query.get("instanceIdPrefix") or None,
    )


class _Api:
    def __init__(self, engine: DurableEngine) -> None:
        self.engine = engine

    def _webhook(self, request: web.Request) -> str:
        return f"{request.scheme}://{request.host}{WEBHOOK_PREFIX}"

    def _check_status(self, request: web.Request, instance_id: str, status: int) -> web.Response:
        payload = management_urls(self.engine.hub, self._webhook(request), quote(instance_id, safe=""))
        payload["id"] = instance_id
        headers = {"Location": payload["statusQueryGetUri"], "Retry-After": "10"}
        return web.json_response(payload, status=status, headers=headers)

    async def start(self, request: web.Request) -> web.Response:
        body = await request.text()
        try:
            input_text = json.dumps(json.loads(body)) if body.strip() else None
        except ValueError:
            return _error(400, "The request content is not valid JSON.", "Newtonsoft.Json.JsonReaderException")
        try:
            instance_id = await self.engine.start_new(
                request.match_info["name"],
                request.match_info.get("instance_id"),
                input_text,
                request.query.get("version"),
            )
        except UnknownOrchestratorError as exc:
            return _error(400, str(exc), "System.ArgumentException")
        except InstanceExistsError as exc:
            return web.json_response({"Message": str(exc)}, status=409)  # CreateErrorResponse without details
        return self._check_status(request, instance_id, 202)

    async def status(self, request: web.Request) -> web.Response:
        instance_id = request.match_info["instance_id"]
        payload = await self.engine.status(
            instance_id,
            show_history=_flag(request, "showHistory", False),
            show_history_output=_flag(request, "showHistoryOutput", False),
            show_input=_flag(request, "showInput", True),
        )
        if payload is None:
            return web.Response(status=404)
        runtime = payload["runtimeStatus"]
        if runtime == RuntimeStatus.FAILED and _flag(request, "returnInternalServerErrorOnFailure", False):
            return web.json_response(payload, status=500)
        if runtime in RuntimeStatus.TERMINAL:
            return web.json_response(payload, status=200)
        location = f"{self._webhook(request)}/instances/{quote(instance_id, safe='')}?taskHub={self.engine.hub}"
        return web.json_response(payload, status=202, headers={"Location": location, "Retry-After": "5"})

    async def list_instances(self, request: web.Request) -> web.Response:
        payload = await self.engine.query(_query(request), show_input=_flag(request, "showInput", True))
        return web.json_response(payload)

    async def raise_event(self, request: web.Request) -> web.Response:
        if request.content_type != _JSON:
            return web.json_response("Only application/json request content is supported", status=400)
        body = await request.text()
        try:
            input_text = json.dumps(json.loads(body)) if body.strip() else None
        except ValueError:
            return web.json_response("The request content is not valid JSON.", status=400)
        return await self._instance_op(
            request,
            lambda iid: self.engine.raise_event(iid, request.match_info["event"], input_text),
        )

    async def terminate(self, request: web.Request) -> web.Response:
        reason = request.query.get("reason")
        return await self._instance_op(request, lambda iid: self.engine.terminate(iid, reason))

    async def suspend(self, request: web.Request) -> web.Response:
        reason = request.query.get("reason")
        return await self._instance_op(request, lambda iid: self.engine.suspend(iid, reason))

    async def resume(self, request: web.Request) -> web.Response:
        reason = request.query.get("reason")
        return await self._instance_op(request, lambda iid: self.engine.resume(iid, reason))

    async def _instance_op(self, request: web.Request, op: Callable[[str], Awaitable[None]]) -> web.Response:
        try:
            await op(request.match_info["instance_id"])
        except InstanceNotFoundError:
            return web.Response(status=404)
        except InstanceGoneError:
            return web.Response(status=410)
        return web.Response(status=202)

    async def restart(self, request: web.Request) -> web.Response:
        new_id = _flag(request, "restartWithNewInstanceId", True)
        try:
            instance_id = await self.engine.restart(request.match_info["instance_id"], new_instance_id=new_id)
        except InstanceNotFoundError:
            return web.Response(status=404)
        except InstanceExistsError as exc:
            message = "A non-terminal instance with this instance ID already exists."
            return _error(409, str(exc), _ALREADY_EXISTS, message=message)
        return web.json_response(instance_id, status=202)

    async def rewind(self, _request: web.Request) -> web.Response:
        return web.json_response("devhost does not support rewind.", status=501)

    async def purge(self, request: web.Request) -> web.Response:
        deleted = await self.engine.purge(request.match_info["instance_id"])
        if not deleted:
            return web.Response(status=404)
        return web.json_response({"instancesDeleted": deleted})

    async def purge_by(self, request: web.Request) -> web.Response:
        deleted = await self.engine.purge_by(_query(request))
        if not deleted:
            return web.Response(status=404)
        return web.json_response({"instancesDeleted": deleted})
