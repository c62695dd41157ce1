"""Razorpay's request bodies and error bodies, as the fake Razorpay reads and answers them.

Errors are `ProviderError`s with Razorpay's body, `{"error": {"code": "BAD_REQUEST_ERROR",
"description", "source", "step", "reason", "metadata", "field"}}` (error-index of the S2S test
docs), so the razorpay SDK raises BadRequestError with the description.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from devhost.fakes.base import ProviderError

Entity = dict[str, Any]


def bad_request(
    description: str, field: str | None = None, status: int = 400, reason: str = "input_validation_failed"
) -> ProviderError:
    error: Entity = {
        "code": "BAD_REQUEST_ERROR",
        "description": description,
        "source": "business",
        "step": "payment_initiation",
        "reason": reason,
        "metadata": {},
    }
    if field is not None:
        error["field"] = field
    return ProviderError(status, {"error": error})


def not_found() -> ProviderError:
    return bad_request("The id provided does not exist", field="id")


def notes_param(value: Any) -> Entity | list[Any]:
    """Razorpay answers empty notes as [] (a PHP array)."""
    if value in (None, [], {}):
        return []
    if not isinstance(value, dict) or len(value) > 15:
        raise bad_request("notes must be an object of at most 15 keys", field="notes")
    if any(not isinstance(v, str | int | float) or len(str(v)) > 256 for v in value.values()):
        raise bad_request("notes values must be strings of at most 256 characters", field="notes")
    return dict(value)


def amount_param(value: Any, currency: str = "INR", minimum: int = 100) -> int:
    if value is None:
        raise bad_request("amount: is required.", field="amount")
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request("The amount must be an integer.", field="amount")
    if value < minimum:
        raise bad_request(f"The amount must be at least {currency} 1.00", field="amount")
    return value


def refuse_unexpected(payload: Mapping[str, Any], allowed: frozenset[str]) -> None:
    extra = sorted(set(payload) - allowed)
    if extra:
        message = f"{', '.join(extra)} is/are not required and should not be sent"
        raise bad_request(message, field=extra[0], reason="extra_field_sent")


def collection(items: list[Entity]) -> Entity:
    return {"entity": "collection", "count": len(items), "items": items}


async def json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        payload = json.loads(raw)
    except ValueError:
        raise bad_request("The request body must be valid JSON") from None
    if not isinstance(payload, dict):
        raise bad_request("The request body must be a JSON object")
    return payload
