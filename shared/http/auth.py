"""The authentication layer every route goes through: bearer access token → principal, role guards.

Each route declares who may call it next to its route (`auth=ANONYMOUS`, `AUTHENTICATED` or
`roles("admin")`). A missing, malformed, expired or revoked token is 401 with `WWW-Authenticate:
Bearer`; a valid token whose role the route does not allow is 403. Anonymous routes ignore tokens.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from shared import resources
from shared.accounts.repository import fetch_account_state
from shared.auth.principal import ROLES, Principal, Role
from shared.auth.service import AccountState, authenticate
from shared.config import get_settings
from shared.errors import Forbidden, Unauthenticated

Authenticator = Callable[[str], Awaitable[Principal]]


@dataclass(frozen=True, slots=True)
class Access:
    """Who may call a route: anyone, any signed-in user, or signed-in users with one of `roles`."""

    authenticated: bool
    roles: frozenset[Role] = frozenset(ROLES)

    def allows(self, role: Role | None) -> bool:
        return not self.authenticated or (role is not None and role in self.roles)


ANONYMOUS = Access(authenticated=False)
AUTHENTICATED = Access(authenticated=True)


def roles(*allowed: Role) -> Access:
    """Access for signed-in users with one of `allowed` roles."""
    if not allowed or not set(allowed) <= set(ROLES):
        raise ValueError(f"roles must be among {ROLES}")
    return Access(authenticated=True, roles=frozenset(allowed))


class MissingToken(Unauthenticated):
    code = "missing_token"
    title = "Send an access token: Authorization: Bearer <token>"


async def principal_for(access: Access, headers: Mapping[str, str], authenticator: Authenticator) -> Principal | None:
    """The caller's principal for a route with `access`; None on anonymous routes."""
    if not access.authenticated:
        return None
    scheme, _, token = (headers.get("authorization") or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise MissingToken()
    principal = await authenticator(token.strip())
    if principal.role not in access.roles:
        raise Forbidden("your role may not use this route")
    return principal


async def _account_state(user_id: uuid.UUID) -> AccountState | None:
    database = await resources.get_database()
    async with database.connection() as conn:
        return await fetch_account_state(conn, user_id)


async def authenticate_bearer(token: str) -> Principal:
    """The app's authenticator: a signed, unexpired token of an active account at its current version."""
    return await authenticate(token, signing_key=get_settings().signing_key(), load_state=_account_state)
