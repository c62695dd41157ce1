"""RFC 9457 problem details: every error response the API sends is built here.

Domain errors map by class (a subclass inherits its parent's status); validation errors report
only each error's location and type, never the rejected input or library messages; anything
unexpected becomes an opaque 500 carrying the invocation id to find it in the logs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import azure.functions as func
from pydantic import ValidationError

from shared.errors import DomainError, ServiceUnavailable, TooManyRequests, Unauthenticated

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:codeconnect:problem:"


def problem(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    *,
    instance: str | None = None,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> func.HttpResponse:
    body: dict[str, Any] = {"type": TYPE_PREFIX + code, "title": title, "status": status, "code": code}
    if detail and detail != title:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra or {})
    return func.HttpResponse(
        json.dumps(body), status_code=status, headers=dict(headers or {}), mimetype=PROBLEM_JSON, charset="utf-8"
    )


def from_domain_error(exc: DomainError, *, instance: str | None = None) -> func.HttpResponse:
    headers = {}
    if isinstance(exc, TooManyRequests | ServiceUnavailable):
        headers["Retry-After"] = str(exc.retry_after_s)
    if isinstance(exc, Unauthenticated):  # RFC 6750 §3
        headers["WWW-Authenticate"] = 'Bearer realm="codeconnect"' + (
            ', error="invalid_token"' if exc.code == "invalid_token" else ""
        )
    return problem(exc.status, exc.code, exc.title, exc.detail, instance=instance, extra=exc.extra, headers=headers)


def from_validation_error(exc: ValidationError, *, instance: str | None = None) -> func.HttpResponse:
    errors = [{"loc": list(error["loc"]), "type": error["type"]} for error in exc.errors()]
    return problem(422, "validation_failed", "The request is not valid", instance=instance, extra={"errors": errors})


def internal_error(invocation_id: str | None, *, instance: str | None = None) -> func.HttpResponse:
    return problem(
        500,
        "internal_error",
        "Internal server error",
        "The error was logged; quote the traceId when reporting it.",
        instance=instance,
        extra={"traceId": invocation_id},
    )
