"""SQL for accounts and their refresh tokens."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from shared.accounts.models import UserPublic
from shared.auth.service import AccountState
from shared.db.database import Connection
from shared.db.errors import translate_errors
from shared.errors import AlreadyExists


class EmailTaken(AlreadyExists):
    code = "email_taken"
    title = "An account with this email already exists"


_BY_CONSTRAINT = {"users_email_key": EmailTaken}


@dataclass(frozen=True, slots=True)
class LoginRecord:
    """What login needs about an account (this is what `user:email:{email}` caches)."""

    id: uuid.UUID
    role: str
    status: str
    password_hash: str | None
    auth_version: int


@dataclass(frozen=True, slots=True)
class RefreshTokenRow:
    id: uuid.UUID
    user_id: uuid.UUID
    family_id: uuid.UUID
    expires_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None


def _public(row: asyncpg.Record) -> UserPublic:
    return UserPublic.model_validate(dict(row))


INSERT_USER = """
INSERT INTO users (email, name, role, password_hash) VALUES ($1, $2, $3, $4)
RETURNING id, email, name, role, status, created_at, updated_at
"""


async def insert_user(conn: Connection, *, email: str, name: str, role: str, password_hash: str) -> UserPublic:
    with translate_errors(_BY_CONSTRAINT):
        row = await conn.fetchrow(INSERT_USER, email, name, role, password_hash)
    assert row is not None
    return _public(row)


SELECT_LOGIN_RECORD = "SELECT id, role, status, password_hash, auth_version FROM users WHERE email = $1"


async def fetch_login_record(conn: Connection, email: str) -> LoginRecord | None:
    row = await conn.fetchrow(SELECT_LOGIN_RECORD, email)
    return None if row is None else LoginRecord(**dict(row))


SELECT_LOGIN_RECORD_BY_ID = "SELECT id, role, status, password_hash, auth_version FROM users WHERE id = $1"


async def fetch_login_record_by_id(conn: Connection, user_id: uuid.UUID) -> LoginRecord | None:
    row = await conn.fetchrow(SELECT_LOGIN_RECORD_BY_ID, user_id)
    return None if row is None else LoginRecord(**dict(row))


LOCK_LOGIN_RECORD = f"{SELECT_LOGIN_RECORD_BY_ID} FOR UPDATE"


async def lock_login_record(conn: Connection, user_id: uuid.UUID) -> LoginRecord | None:
    """The account's login record as committed now, locked until the transaction ends."""
    row = await conn.fetchrow(LOCK_LOGIN_RECORD, user_id)
    return None if row is None else LoginRecord(**dict(row))


# In id order, so that concurrent admin changes queue on the same first row instead of deadlocking.
LOCK_ACTIVE_ADMINS = "SELECT id FROM users WHERE role = 'admin' AND status = 'active' ORDER BY id FOR UPDATE"


async def lock_active_admins(conn: Connection) -> set[uuid.UUID]:
    """The ids of the active admins, locked until the transaction ends (serialises admin changes)."""
    return {row["id"] for row in await conn.fetch(LOCK_ACTIVE_ADMINS)}


SELECT_ACCOUNT_STATE = "SELECT role, status, auth_version FROM users WHERE id = $1"


async def fetch_account_state(conn: Connection, user_id: uuid.UUID) -> AccountState | None:
    row = await conn.fetchrow(SELECT_ACCOUNT_STATE, user_id)
    return None if row is None else AccountState(row["role"], row["status"], row["auth_version"])


SELECT_USER = "SELECT id, email, name, role, status, created_at, updated_at FROM users WHERE id = $1"


async def fetch_user(conn: Connection, user_id: uuid.UUID) -> UserPublic | None:
    row = await conn.fetchrow(SELECT_USER, user_id)
    return None if row is None else _public(row)


UPDATE_PROFILE = """
UPDATE users SET name = coalesce($2::text, name), email = coalesce($3::text, email),
                 password_hash = coalesce($4::text, password_hash), updated_at = now()
WHERE id = $1 AND status = 'active'
RETURNING id, email, name, role, status, created_at, updated_at
"""


async def update_profile(
    conn: Connection, user_id: uuid.UUID, *, name: str | None, email: str | None, password_hash: str | None
) -> UserPublic | None:
    with translate_errors(_BY_CONSTRAINT):
        row = await conn.fetchrow(UPDATE_PROFILE, user_id, name, email, password_hash)
    return None if row is None else _public(row)


# Compare-and-set: a password change that committed meanwhile is never overwritten by the upgrade.
UPGRADE_HASH = """
UPDATE users SET password_hash = $3, updated_at = now()
WHERE id = $1 AND password_hash = $2 AND status = 'active'
"""


async def upgrade_password_hash(conn: Connection, user_id: uuid.UUID, *, old_hash: str, new_hash: str) -> bool:
    """Replace `old_hash` by `new_hash` (same password, new cost); False if the hash changed meanwhile."""
    result: str = await conn.execute(UPGRADE_HASH, user_id, old_hash, new_hash)
    return result == "UPDATE 1"


# The row stays (bookings and payments refer to it for audit); what identified the person goes. The
# anonymised email has no "@", which no address accepted by the API can lack: nobody can squat it.
ANONYMISE = """
WITH before AS (SELECT id, email FROM users WHERE id = $1 AND status <> 'deleted' FOR UPDATE)
UPDATE users SET email = 'deleted-' || users.id, name = 'Deleted user', status = 'deleted',
                 password_hash = NULL, deleted_at = now(), auth_version = auth_version + 1, updated_at = now()
FROM before WHERE users.id = before.id
RETURNING before.email
"""


async def anonymise(conn: Connection, user_id: uuid.UUID) -> str | None:
    """Anonymise the account; its former email, or None if it was already deleted or never existed."""
    with translate_errors(_BY_CONSTRAINT):  # cannot happen (see ANONYMISE); a 409 if it ever did
        old_email: str | None = await conn.fetchval(ANONYMISE, user_id)
    return old_email


ADMIN_UPDATE = """
UPDATE users SET
    status = coalesce($2::text, status),
    role = coalesce($3::text, role),
    deactivated_at = CASE WHEN $2::text = 'deactivated' AND status <> 'deactivated' THEN now()
                          WHEN $2::text = 'active' THEN NULL ELSE deactivated_at END,
    auth_version = auth_version + CASE WHEN ($2::text = 'deactivated' AND status <> 'deactivated')
                                         OR ($3::text IS NOT NULL AND $3::text <> role) THEN 1 ELSE 0 END,
    updated_at = now()
WHERE id = $1 AND status <> 'deleted'
RETURNING id, email, name, role, status, created_at, updated_at
"""


async def admin_update(
    conn: Connection, user_id: uuid.UUID, *, status: str | None, role: str | None
) -> UserPublic | None:
    row = await conn.fetchrow(ADMIN_UPDATE, user_id, status, role)
    return None if row is None else _public(row)


# Keyset pagination, newest first: the cursor is the (created_at, id) of the last row of a page.
LIST_USERS = """
SELECT id, email, name, role, status, created_at, updated_at FROM users
WHERE ($1::text IS NULL OR role = $1) AND ($2::text IS NULL OR status = $2)
  AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::uuid))
ORDER BY created_at DESC, id DESC
LIMIT $5
"""


async def list_users(
    conn: Connection,
    *,
    role: str | None,
    status: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[UserPublic]:
    after_at, after_id = after if after is not None else (None, None)
    rows = await conn.fetch(LIST_USERS, role, status, after_at, after_id, limit)
    return [_public(row) for row in rows]


INSERT_REFRESH_ROW = """
INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at) VALUES ($1, $2, $3, $4)
"""


async def insert_refresh_token(
    conn: Connection, *, user_id: uuid.UUID, family_id: uuid.UUID, token_hash: bytes, expires_at: datetime
) -> None:
    await conn.execute(INSERT_REFRESH_ROW, user_id, family_id, token_hash, expires_at)


LOCK_REFRESH_ROW = """
SELECT id, user_id, family_id, expires_at, rotated_at, revoked_at FROM refresh_tokens
WHERE token_hash = $1 FOR UPDATE
"""


async def lock_refresh_token(conn: Connection, token_hash: bytes) -> RefreshTokenRow | None:
    row = await conn.fetchrow(LOCK_REFRESH_ROW, token_hash)
    return None if row is None else RefreshTokenRow(**dict(row))


MARK_ROTATED = "UPDATE refresh_tokens SET rotated_at = now() WHERE id = $1"


async def mark_rotated(conn: Connection, token_id: uuid.UUID) -> None:
    await conn.execute(MARK_ROTATED, token_id)


REVOKE_FAMILY = "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL"


async def revoke_family(conn: Connection, family_id: uuid.UUID) -> None:
    await conn.execute(REVOKE_FAMILY, family_id)


REVOKE_USER_TOKENS = """
UPDATE refresh_tokens SET revoked_at = now()
WHERE user_id = $1 AND revoked_at IS NULL AND ($2::uuid IS NULL OR family_id <> $2)
"""


async def revoke_user_tokens(conn: Connection, user_id: uuid.UUID, *, keep_family: uuid.UUID | None = None) -> None:
    """Revoke every refresh token of `user_id`, except those of the session `keep_family`."""
    await conn.execute(REVOKE_USER_TOKENS, user_id, keep_family)


def as_json(record: LoginRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {
        "id": str(record.id),
        "role": record.role,
        "status": record.status,
        "password_hash": record.password_hash,
        "auth_version": record.auth_version,
    }


def from_json(data: dict[str, Any] | None) -> LoginRecord | None:
    if data is None:
        return None
    return LoginRecord(
        uuid.UUID(data["id"]), data["role"], data["status"], data["password_hash"], int(data["auth_version"])
    )
