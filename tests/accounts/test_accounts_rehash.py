"""Rehash on login: a hash below BCRYPT_COST is upgraded once the password is proven, never otherwise."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from accounts_client import Api

from devhost.testing import HostThread
from shared import resources
from shared.accounts import repository, service
from shared.accounts.models import Credentials
from shared.auth.passwords import PasswordHasher
from shared.config import get_settings

APP_COST = 4  # what the test host hashes with (devhost.pytest_plugin); the upgrade target is one more
UPGRADED_COST = APP_COST + 1


@pytest.fixture
def stronger_hasher() -> Iterator[PasswordHasher]:
    hasher = PasswordHasher(cost=UPGRADED_COST, threads=1, queue_size=2)
    yield hasher
    hasher.close()


def login_at(app_host: HostThread, hasher: PasswordHasher, email: str, password: str) -> Any:
    """Log in through the service as an app whose BCRYPT_COST is the hasher's would."""

    async def run() -> Any:
        ctx = service.AccountsContext(
            database=await resources.get_database(),
            cache=await resources.get_cache(),
            hasher=hasher,
            limiter=await resources.get_rate_limiter(),
            settings=get_settings(),
        )
        return await service.login(ctx, Credentials(email=email, password=password), client_ip="10.9.9.9")

    return app_host.call(run())


def stored_hash(app_host: HostThread, user_id: str) -> str:
    async def read() -> str:
        async with (await resources.get_database()).connection() as conn:
            value: str = await conn.fetchval("SELECT password_hash FROM users WHERE id = $1", uuid.UUID(user_id))
        return value

    return app_host.call(read())


async def test_a_lower_cost_hash_is_upgraded_on_the_next_successful_login(
    api: Api, app_host: HostThread, stronger_hasher: PasswordHasher
) -> None:
    user = await api.register()
    await api.tokens(user)  # warms user:email:{email} with the old hash
    old = stored_hash(app_host, user["id"])
    assert old.startswith(f"$2b$0{APP_COST}$")

    login_at(app_host, stronger_hasher, user["email"], user["password"])
    upgraded = stored_hash(app_host, user["id"])
    assert upgraded.startswith(f"$2b$0{UPGRADED_COST}$")
    assert stronger_hasher.needs_rehash(old) and not stronger_hasher.needs_rehash(upgraded)

    # The cached record was dropped: had the old hash been served again, this login would upgrade again.
    login_at(app_host, stronger_hasher, user["email"], user["password"])
    assert stored_hash(app_host, user["id"]) == upgraded
    # The same password still works, through the app as well, and existing sessions are untouched.
    assert (await api.login(user["email"], user["password"])).status == 200


async def test_a_wrong_password_never_rewrites_the_hash(
    api: Api, app_host: HostThread, stronger_hasher: PasswordHasher
) -> None:
    user = await api.register()
    old = stored_hash(app_host, user["id"])
    with pytest.raises(service.InvalidCredentials):
        login_at(app_host, stronger_hasher, user["email"], "not the password")
    assert stored_hash(app_host, user["id"]) == old


async def test_a_hash_at_or_above_the_configured_cost_is_kept(api: Api, app_host: HostThread) -> None:
    user = await api.register()
    old = stored_hash(app_host, user["id"])
    weaker = PasswordHasher(cost=APP_COST, threads=1, queue_size=0)
    try:
        login_at(app_host, weaker, user["email"], user["password"])
    finally:
        weaker.close()
    assert stored_hash(app_host, user["id"]) == old
    assert not weaker.needs_rehash("$2b$13$" + "x" * 53)  # a lowered cost never downgrades


async def test_the_upgrade_never_overwrites_a_password_changed_meanwhile(api: Api, app_host: HostThread) -> None:
    user = await api.register()
    current = stored_hash(app_host, user["id"])

    async def upgrade(old_hash: str) -> bool:
        async with (await resources.get_database()).transaction() as conn:
            return await repository.upgrade_password_hash(
                conn, uuid.UUID(user["id"]), old_hash=old_hash, new_hash="$2b$05$" + "y" * 53
            )

    assert not app_host.call(upgrade("$2b$04$" + "z" * 53))  # a stale hash: another write won
    assert stored_hash(app_host, user["id"]) == current
