"""SQL for stored Idempotency-Key results (`idempotency_keys`). Every value is a bind parameter."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.db.database import Connection

KeyId = tuple[uuid.UUID, str, str]  # (user_id, operation, key): the table's primary key


@dataclass(frozen=True, slots=True)
class StoredResult:
    fingerprint: bytes
    status: int
    body: Any


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


async def claim(conn: Connection, key: KeyId, fingerprint: bytes) -> bool:
    """Insert the key as in progress; False when it exists. Waits while another transaction holds
    the same key, until that one commits or rolls back."""
    return bool(await conn.fetchval(CLAIM, *key, fingerprint))


async def fetch_stored(conn: Connection, key: KeyId) -> StoredResult | None:
    row = await conn.fetchrow(SELECT_STORED, *key)
    if row is None:
        return None
    return StoredResult(bytes(row["fingerprint"]), row["response_status"], row["response_body"])


async def complete(conn: Connection, key: KeyId, status: int, body: Any) -> None:
    await conn.execute(COMPLETE, *key, status, body)


async def purge_older_than(conn: Connection, cutoff: datetime) -> int:
    """Forget keys created before `cutoff` (housekeeping); returns how many."""
    status = await conn.execute(PURGE, cutoff)
    return int(status.split()[-1])
