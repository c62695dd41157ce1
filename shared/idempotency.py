"""Idempotency-Key replay for unsafe requests (draft-ietf-httpapi-idempotency-key-header).

A key is scoped to the user and the operation. The first request with a key runs the operation
and stores its response in `idempotency_keys` in the same transaction, so a key never outlives a
rolled-back write and only successful results are stored. A retry with the same key and the same
body gets the stored status and body back, marked `Idempotent-Replayed: true`; the same key with a
different body is 422 `idempotency_key_reused`. A concurrent duplicate blocks on the key's primary
key until the first transaction ends, then replays its result (or runs, if the first rolled back).

Use it inside the operation's transaction:

    async with database.transaction() as conn:
        outcome = await idempotency.run_once(conn, key, lambda: perform(conn))
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import azure.functions as func
from pydantic import BaseModel

from shared.db.database import Connection
from shared.errors import DomainError, ValidationFailed

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255

# What `perform` returns and what is stored: the HTTP status and the JSON body.
Result = tuple[int, Any]


class InvalidIdempotencyKey(DomainError):
    code = "invalid_idempotency_key"
    title = "The Idempotency-Key header must be 1-255 visible ASCII characters"


class IdempotencyKeyReused(ValidationFailed):
    code = "idempotency_key_reused"
    title = "This Idempotency-Key was already used with a different request body"


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    user_id: uuid.UUID
    operation: str
    key: str
    fingerprint: bytes


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    body: Any
    replayed: bool


def fingerprint(body: BaseModel) -> bytes:
    """A digest of the parsed body, so formatting and key order do not make a request different."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).digest()


def key_from_headers(
    headers: Mapping[str, str], *, user_id: uuid.UUID, operation: str, body: BaseModel
) -> IdempotencyKey | None:
    """The request's key, or None when it sent no Idempotency-Key header."""
    raw = headers.get(HEADER.lower())
    if raw is None:
        return None
    key = raw.strip()
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all("\x21" <= ch <= "\x7e" for ch in key):
        raise InvalidIdempotencyKey()
    return IdempotencyKey(user_id, operation, key, fingerprint(body))


CLAIM = """
INSERT INTO idempotency_keys (user_id, operation, key, fingerprint, response_status, response_body)
VALUES ($1, $2, $3, $4, 0, 'null')
ON CONFLICT DO NOTHING
RETURNING true
"""
SELECT_STORED = """
SELECT fingerprint, response_status, response_body FROM idempotency_keys
WHERE user_id = $1 AND operation = $2 AND key = $3
"""
COMPLETE = """
UPDATE idempotency_keys SET response_status = $4, response_body = $5
WHERE user_id = $1 AND operation = $2 AND key = $3
"""
PURGE = "DELETE FROM idempotency_keys WHERE created_at < $1"


async def run_once(conn: Connection, key: IdempotencyKey | None, perform: Callable[[], Awaitable[Result]]) -> Outcome:
    """Run `perform` once per key (inside the caller's transaction), or replay its stored result."""
    if key is None:
        status, body = await perform()
        return Outcome(status, body, replayed=False)
    ids = (key.user_id, key.operation, key.key)
    while True:
        # Waits here while another transaction holds the same key, until it commits or rolls back.
        if await conn.fetchval(CLAIM, *ids, key.fingerprint):
            break
        stored = await conn.fetchrow(SELECT_STORED, *ids)
        if stored is None:
            continue  # housekeeping purged it between the two statements: claim it afresh
        if bytes(stored["fingerprint"]) != key.fingerprint:
            raise IdempotencyKeyReused()
        return Outcome(stored["response_status"], stored["response_body"], replayed=True)
    status, body = await perform()
    await conn.execute(COMPLETE, *ids, status, body)
    return Outcome(status, body, replayed=False)


def to_response(outcome: Outcome) -> func.HttpResponse:
    headers = {REPLAYED_HEADER: "true"} if outcome.replayed else {}
    return func.HttpResponse(
        json.dumps(outcome.body),
        status_code=outcome.status,
        headers=headers,
        mimetype="application/json",
        charset="utf-8",
    )


async def purge_older_than(conn: Connection, cutoff: datetime) -> int:
    """Forget keys created before `cutoff` (housekeeping); returns how many."""
    status = await conn.execute(PURGE, cutoff)
    return int(status.split()[-1])
