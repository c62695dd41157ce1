"""The HTTP side of Idempotency-Key: an operation's outcome as the response, a replay marked as one."""

from __future__ import annotations

import json

import azure.functions as func

from shared.idempotency import REPLAYED_HEADER, Outcome


def to_response(outcome: Outcome) -> func.HttpResponse:
    headers = {REPLAYED_HEADER: "true"} if outcome.replayed else {}
    return func.HttpResponse(
        json.dumps(outcome.body),
        status_code=outcome.status,
        headers=headers,
        mimetype="application/json",
        charset="utf-8",
    )
