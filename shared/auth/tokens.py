"""Access tokens (signed JWTs, via PyJWT) and opaque refresh tokens (random, stored only as hashes)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

import jwt

from shared.errors import Unauthenticated

ALGORITHM = "HS256"
ISSUER = "codeconnect"
_REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "ver", "sid"]


class InvalidToken(Unauthenticated):
    code = "invalid_token"
    title = "The access token is invalid or expired"


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    role: str
    version: int
    session_id: uuid.UUID


def issue_access_token(
    key: str, *, user_id: uuid.UUID, role: str, version: int, session_id: uuid.UUID, now: int, ttl_s: int
) -> str:
    """A signed access token for `user_id` in session `session_id` (its refresh family), valid `ttl_s` from `now`."""
    claims = {
        "sub": str(user_id),
        "role": role,
        "ver": version,
        "sid": str(session_id),
        "iat": now,
        "exp": now + ttl_s,
        "iss": ISSUER,
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def read_access_token(key: str, token: str) -> AccessClaims:
    """The claims of a valid token; InvalidToken when the signature, issuer, shape or expiry is wrong."""
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM], issuer=ISSUER, options={"require": _REQUIRED_CLAIMS})
        return AccessClaims(uuid.UUID(claims["sub"]), str(claims["role"]), int(claims["ver"]), uuid.UUID(claims["sid"]))
    except (jwt.PyJWTError, KeyError, ValueError, TypeError):
        raise InvalidToken() from None


def new_refresh_token() -> tuple[str, bytes]:
    """A new opaque refresh token and the hash to store (256 random bits, so SHA-256 suffices)."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
