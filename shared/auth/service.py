"""Authentication of bearer access tokens against the account's current state."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from shared.auth.principal import Principal, Role
from shared.auth.tokens import InvalidToken, read_access_token


@dataclass(frozen=True, slots=True)
class AccountState:
    role: Role
    status: str
    auth_version: int


LoadState = Callable[[uuid.UUID], Awaitable[AccountState | None]]


async def authenticate(token: str, *, signing_key: str, load_state: LoadState) -> Principal:
    """The principal a valid access token stands for.

    The signature and expiry are checked first (no I/O for forged or stale tokens); then the account
    must still be active and the token must carry the account's current `auth_version`, so a
    deactivation, role change or deletion stops every access token issued before it on the next
    request. The role comes from the account, never from the token alone.
    """
    claims = read_access_token(signing_key, token)
    state = await load_state(claims.user_id)
    if state is None or state.status != "active" or state.auth_version != claims.version:
        raise InvalidToken()
    return Principal(claims.user_id, state.role, claims.session_id)
