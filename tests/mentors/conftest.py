"""The app served by devhost over HTTP for the mentors tests, and users with access tokens.

Users are inserted directly and given tokens from the accounts feature's own issuer, so these
tests do not pay for registration and bcrypt on every user.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from devhost.testing import HostThread
from shared.auth.tokens import issue_access_token
from shared.config import get_settings
from shared.resources import close_resources

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class User:
    id: uuid.UUID
    role: str
    token: str


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
        self, method: str, path: str, body: Any = None, *, user: User | None = None, raw: bytes | None = None
    ) -> Reply:
        headers = {"Content-Type": "application/json"}
        if user is not None:
            headers["Authorization"] = f"Bearer {user.token}"
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        async with self.http.request(method, f"{self.base}/api/{path}", data=data, headers=headers) as response:
            content = await response.read()
            return Reply(response.status, dict(response.headers), json.loads(content) if content else None)


@pytest.fixture(scope="module")
def app_host(app_settings: dict[str, str]) -> Iterator[HostThread]:
    with HostThread(ROOT) as host:
        yield host
        host.call(close_resources())


@pytest.fixture
async def api(app_host: HostThread) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
        yield Client(http, app_host.url)


@pytest.fixture
async def make_user(database_url: str, app_settings: dict[str, str]) -> AsyncIterator[Callable[[str], Awaitable[User]]]:
    conn = await asyncpg.connect(database_url)

    async def make(role: str) -> User:
        user_id = await conn.fetchval(
            "INSERT INTO users (email, name, role, password_hash) VALUES ($1, $2, $3, 'unused') RETURNING id",
            f"{uuid.uuid4().hex[:12]}@example.com",
            f"{role.title()} {uuid.uuid4().hex[:4]}",
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
        return User(user_id, role, token)

    yield make
    await conn.close()
