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

and answer with shared/http/idempotency.py `to_response(outcome)`. The SQL is in `repository.py`.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from shared.db.database import Connection
from shared.errors import DomainError, ValidationFailed
from shared.idempotency import repository

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
    """A digest of the validated body in canonical form, so that neither formatting, key order nor
    the offset an instant is written in (10:00Z and 15:30+05:30) makes a request different."""
    canonical = json.dumps(to_jsonable_python(_canonical(body.model_dump())), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).digest()


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    return value


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


async def run_once(conn: Connection, key: IdempotencyKey | None, perform: Callable[[], Awaitable[Result]]) -> Outcome:
    """Run `perform` once per key (inside the caller's transaction), or replay its stored result."""
    if key is None:
        status, body = await perform()
        return Outcome(status, body, replayed=False)
    ids = (key.user_id, key.operation, key.key)
    while True:
        if await repository.claim(conn, ids, key.fingerprint):
            break
        stored = await repository.fetch_stored(conn, ids)
        if stored is None:
            continue  # housekeeping purged it between the two statements: claim it afresh
        if stored.fingerprint != key.fingerprint:
            raise IdempotencyKeyReused()
        return Outcome(stored.status, stored.body, replayed=True)
    status, body = await perform()
    await repository.complete(conn, ids, status, body)
    return Outcome(status, body, replayed=False)


async def purge_older_than(conn: Connection, cutoff: datetime) -> int:
    """Forget keys created before `cutoff` (housekeeping); returns how many."""
    return await repository.purge_older_than(conn, cutoff)
