"""The accounts tests drive the app (tests/conftest.py's `app_host`) through registration and login,
so their `api` is accounts_client.Api, sending from a fresh client IP per test; and an admin."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from accounts_client import Api, new_ip

from devhost.testing import HostThread


@pytest.fixture
async def api(app_host: HostThread) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
        yield Api(http, app_host.url, new_ip())


@pytest.fixture
def make_admin(app_host: HostThread) -> Callable[[Api], Awaitable[dict[str, Any]]]:
    """Make a fresh admin account (by the service the create_admin command uses) and log it in."""
    from shared import resources
    from shared.accounts import service
    from shared.config import get_settings

    async def create() -> str:
        ctx = service.AccountsContext(
            database=await resources.get_database(),
            cache=await resources.get_cache(),
            hasher=await resources.get_password_hasher(),
            limiter=await resources.get_rate_limiter(),
            settings=get_settings(),
        )
        email = f"admin-{new_ip()}-{uuid.uuid4().hex[:6]}@example.com"
        await service.create_admin(ctx, email=email, name="Admin", password="admin password")
        return email

    async def make(api: Api) -> dict[str, Any]:
        user = {"email": app_host.call(create()), "password": "admin password"}
        tokens = await api.tokens(user)
        me = await api.call("GET", "users/me", token=tokens["access_token"])
        return {**me.body, **user, **tokens}

    return make


@pytest.fixture
async def admin(api: Api, make_admin: Callable[[Api], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    return await make_admin(api)
