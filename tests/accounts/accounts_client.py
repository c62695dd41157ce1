"""Helpers for the accounts tests: an HTTP client for the app served by devhost, and test users."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
from api_support import Reply


@dataclass
class Api:
    http: aiohttp.ClientSession
    base: str
    ip: str

    async def call(
        self, method: str, path: str, body: Any = None, *, token: str | None = None, ip: str | None = None
    ) -> Reply:
        headers = {"X-Forwarded-For": ip or self.ip}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"
        async with self.http.request(method, f"{self.base}/api/{path}", data=data, headers=headers) as response:
            raw = await response.read()
            return Reply(response.status, dict(response.headers), json.loads(raw) if raw else None)

    async def register(self, role: str = "student", password: str = "correct horse", **extra: Any) -> dict[str, Any]:  # noqa: S107
        email = extra.pop("email", f"{uuid.uuid4().hex[:10]}@Example.COM")
        reply = await self.call(
            "POST", "auth/register", {"email": email, "password": password, "name": "Test User", "role": role, **extra}
        )
        assert reply.status == 201, reply.body
        user: dict[str, Any] = reply.body
        return {**user, "password": password}

    async def login(self, email: str, password: str) -> Reply:
        return await self.call("POST", "auth/login", {"email": email, "password": password})

    async def tokens(self, user: dict[str, Any]) -> dict[str, Any]:
        reply = await self.login(user["email"], user["password"])
        assert reply.status == 200, reply.body
        tokens: dict[str, Any] = reply.body
        return tokens


def new_ip() -> str:
    n = uuid.uuid4().int
    return f"10.{n % 256}.{(n >> 8) % 256}.{(n >> 16) % 256}"
