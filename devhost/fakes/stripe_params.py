"""Stripe's request parameters and error bodies, as the fake Stripe reads and answers them.

Errors are `ProviderError`s with Stripe's body, `{"error": {"type", "message", "param", "code",
"doc_url"}}`, so stripe-python raises the matching exception class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from devhost.fakes.base import ProviderError
from devhost.fakes.stripe_forms import decode_form

Entity = dict[str, Any]
Params = dict[str, Any]
ZERO_DECIMAL = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "vnd", "xaf", "xof"})


def invalid(message: str, *, param: str | None = None, code: str | None = None, status: int = 400) -> ProviderError:
    error: Entity = {"type": "invalid_request_error", "message": message}
    if param is not None:
        error["param"] = param
    if code is not None:
        error["code"] = code
        error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    return ProviderError(status, {"error": error})


def missing(kind: str, object_id: str, param: str) -> ProviderError:
    return invalid(f"No such {kind}: '{object_id}'", param=param, code="resource_missing", status=404)


def unexpected_state(message: str) -> ProviderError:
    return invalid(message, code="payment_intent_unexpected_state")


def idempotency_error(message: str) -> Entity:
    return {"error": {"type": "idempotency_error", "message": message}}


async def read_params(request: web.Request) -> Params:
    raw = (await request.read()).decode("utf-8", errors="replace")
    try:
        return decode_form(raw or request.query_string)
    except ValueError as exc:
        raise invalid(f"Invalid parameter name: {exc}") from None


def allow(params: Params, allowed: set[str]) -> None:
    for name in params:
        if name not in allowed:
            raise invalid(f"Received unknown parameter: {name}", param=name, code="parameter_unknown")


def required(params: Params, name: str) -> Any:
    if name not in params or params[name] == "":
        raise invalid(f"Missing required param: {name}.", param=name, code="parameter_missing")
    return params[name]


def currency_param(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 3 or not value.isalpha():
        raise invalid(f"Invalid currency: {value}.", param="currency")
    return value.lower()


def amount_param(value: Any, currency: str, *, minimum: int | None = None) -> int:
    try:
        amount = int(value)
    except (TypeError, ValueError):
        raise invalid(f"Invalid integer: {value}", param="amount", code="parameter_invalid_integer") from None
    floor = minimum if minimum is not None else (1 if currency in ZERO_DECIMAL else 50)
    if amount < floor:
        raise invalid(f"Amount must be at least {floor} {currency}", param="amount", code="amount_too_small")
    return amount


def boolean_param(value: Any, param: str) -> bool:
    if value in ("true", True):
        return True
    if value in ("false", False):
        return False
    raise invalid(f"Invalid boolean: {value}", param=param)


def metadata_param(value: Any, current: Mapping[str, str]) -> dict[str, str]:
    """Stripe merges metadata on update; an empty value removes a key; "" removes all."""
    if value is None:
        return dict(current)
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid("Invalid object", param="metadata")
    merged = dict(current)
    for key, item in value.items():
        if len(key) > 40 or not isinstance(item, str) or len(item) > 500:
            raise invalid("Metadata keys are at most 40 and values at most 500 characters.", param="metadata")
        if item == "":
            merged.pop(key, None)
        else:
            merged[key] = item
    if len(merged) > 50:
        raise invalid("Metadata may have at most 50 keys.", param="metadata")
    return merged
