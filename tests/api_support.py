"""The HTTP side of the route tests: the app served by devhost, a client for it, its replies, and users
inserted directly with access tokens from the accounts feature's own issuer (so tests do not pay
for registration and bcrypt on every user).

Imported by name from the tests/ folder (which pytest puts on sys.path for tests/conftest.py); the
fixtures built on it (`app_host`, `api`, `db`, `make_user`) are in tests/conftest.py.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from devhost.testing import HostThread
from shared.auth.principal import Principal
from shared.auth.tokens import issue_access_token
from shared.config import get_settings
from shared.resources import close_resources

ROOT = Path(__file__).resolve().parents[1]


def serve_app(**host_options: Any) -> Iterator[HostThread]:
    """The app (function_app.py) on devhost, for a module-scoped `app_host` fixture to yield from;
    `host_options` go to HostThread (e.g. a clock, or services=builtin_service_factories())."""
    with HostThread(ROOT, **host_options) as host:
        yield host
        host.call(close_resources())


@dataclass
class User:
    id: uuid.UUID
    role: str
    token: str
    name: str = ""

    @property
    def principal(self) -> Principal:
        """The user as the service layer sees a caller, for tests that call use cases directly."""
        return Principal(self.id, self.role, uuid.uuid4())


MakeUser = Callable[[str], Awaitable[User]]
"""The `make_user` fixture: insert a user in a role, with an access token."""


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class Client:
    http: aiohttp.ClientSession
    base: str

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        user: User | None = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """`body` is sent as JSON, `raw` as it is (for malformed bodies); `user` signs the request."""
        sent = {"Content-Type": "application/json", **(headers or {})}
        if user is not None:
            sent["Authorization"] = f"Bearer {user.token}"
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        async with self.http.request(method, f"{self.base}/api/{path}", data=data, headers=sent) as response:
            content = await response.read()
            return Reply(response.status, dict(response.headers), json.loads(content) if content else None)


def is_problem(reply: Reply, status: int, code: str) -> bool:
    """The reply is an RFC 9457 problem with this status and stable code."""
    return (
        reply.status == status
        and reply.headers.get("Content-Type", "").startswith("application/problem+json")
        and reply.body["code"] == code
    )


async def insert_user(conn: asyncpg.Connection[Any], role: str, name: str | None = None) -> User:
    """A user row in `role` with a fresh email, and a 15-minute access token for it."""
    name = name or f"{role.title()} {uuid.uuid4().hex[:4]}"
    user_id = await conn.fetchval(
        "INSERT INTO users (email, name, role, password_hash) VALUES ($1, $2, $3, 'unused') RETURNING id",
        f"{uuid.uuid4().hex[:12]}@example.com",
        name,
        role,
    )
    token = issue_access_token(
        get_settings().signing_key(),
        user_id=user_id,
        role=role,
        version=1,
        session_id=uuid.uuid4(),
        now=int(time.time()),
        ttl_s=900,
    )
    return User(user_id, role, token, name)
