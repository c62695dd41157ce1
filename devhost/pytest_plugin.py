"""Session fixtures for the services the app needs. Load with `pytest_plugins = ["devhost.pytest_plugin"]`.

- `stack`: PostgreSQL, Redis and Azurite started for this session on free loopback ports (or the ones
  named by DATABASE_URL / REDIS_URL / AZURE_STORAGE_CONNECTION_STRING), stopped at the end.
  `stack.redis` is None when Redis came from the environment; otherwise `stack.redis.stop()` /
  `stack.redis.start()` restart it on the same port (fault tests).
- `database_url`: a fresh database `test_<random>` on the stack's server, migrated with
  `shared.db.migrate.migrate`, dropped at the end. Tests never touch the server's other databases.
- `redis_url`: flushed at session start when the stack started Redis.
- `storage_connection_string`: Azurite's explicit connection string.
- `app_env`: the environment variables the app reads for these services.
- `fake_razorpay_server`, `fake_stripe_server`: a fake provider (devhost/fakes/README.md) started once
  per session on a free port, so an app that reads its settings once keeps a valid base URL;
  `.url` is the SDK base URL, `.app_env()` the variables that point the app at it.
- `fake_razorpay`, `fake_stripe`: the same fake, reset before and after each test (no objects,
  faults, events or switches left over).
- `webhook_receiver`: a small server recording the POSTs it gets (a stand-in webhook endpoint).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from secrets import token_hex
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio
import redis

from devhost.services import Stack, start_stack

if TYPE_CHECKING:
    from devhost.fakes.base import FakeProvider
    from devhost.fakes.razorpay import FakeRazorpay
    from devhost.fakes.receiver import WebhookReceiver
    from devhost.fakes.stripe import FakeStripe

FakeT = TypeVar("FakeT", bound="FakeProvider")


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    services = start_stack("test")
    try:
        yield services
    finally:
        services.stop()


def with_database(url: str, database: str) -> str:
    """`url` pointing at another database of the same server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def database_url(stack: Stack) -> AsyncIterator[str]:
    from shared.db.migrate import migrate  # imported here: the app's modules load only when a test needs them

    name = f"test_{token_hex(6)}"
    admin = await asyncpg.connect(stack.database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = with_database(stack.database_url, name)
    try:
        await migrate(dsn)
        yield dsn
    finally:
        admin = await asyncpg.connect(stack.database_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(scope="session")
def redis_url(stack: Stack) -> str:
    if stack.redis is not None:
        with redis.Redis.from_url(stack.redis_url) as client:
            client.flushdb()
    return stack.redis_url


@pytest.fixture(scope="session")
def storage_connection_string(stack: Stack) -> str:
    return stack.storage_connection_string


@pytest.fixture(scope="session")
def app_env(database_url: str, redis_url: str, storage_connection_string: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "AZURE_STORAGE_CONNECTION_STRING": storage_connection_string,
        "AzureWebJobsStorage": storage_connection_string,
        "DURABLE_TASK_HUB": "testhub",
        "JWT_SIGNING_KEY": token_hex(32),
        "BCRYPT_COST": "4",  # a fresh key per session; cheap hashes for tests
    }


@pytest.fixture(scope="session")
def fake_razorpay_server() -> Iterator[FakeRazorpay]:
    from devhost.fakes.razorpay import FakeRazorpay  # the fakes load only for the tests that use them

    with FakeRazorpay() as fake:
        yield fake


@pytest.fixture(scope="session")
def fake_stripe_server() -> Iterator[FakeStripe]:
    from devhost.fakes.stripe import FakeStripe

    with FakeStripe() as fake:
        yield fake


def reset_around_a_test(fake: FakeT, name: str) -> Iterator[FakeT]:
    """`fake` reset before and after the test; a 500 the fake answered (its own bug) fails the test."""
    fake.reset()
    yield fake
    errors = list(fake.internal_errors)
    fake.reset()
    assert not errors, f"the fake {name} itself failed (answered 500): {errors!r}"


@pytest.fixture
def fake_razorpay(fake_razorpay_server: FakeRazorpay) -> Iterator[FakeRazorpay]:
    yield from reset_around_a_test(fake_razorpay_server, "razorpay")


@pytest.fixture
def fake_stripe(fake_stripe_server: FakeStripe) -> Iterator[FakeStripe]:
    yield from reset_around_a_test(fake_stripe_server, "stripe")


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    from devhost.fakes.receiver import WebhookReceiver

    with WebhookReceiver() as receiver:
        yield receiver
