"""Test session wiring: private services (devhost.pytest_plugin), the app's settings, and the app
served by devhost over HTTP with users to call it (the types are in tests/api_support.py).

A folder's conftest.py or a test module overrides a fixture here by defining one of the same name
(tests/accounts drive the app through registration with their own `api`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import aiohttp
import asyncpg
import pytest
from api_support import Client, MakeUser, User, insert_user, serve_app
from booking_history import History

from devhost.host import builtin_service_factories
from devhost.testing import HostThread
from shared import resources
from shared.cache.cache import Cache
from shared.config import get_settings
from shared.db.database import Database

if TYPE_CHECKING:
    from devhost.fakes.razorpay import FakeRazorpay
    from devhost.fakes.stripe import FakeStripe

pytest_plugins = ["devhost.pytest_plugin"]


@pytest.fixture(scope="session")
def app_settings(app_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The app's environment for this session, applied to the process like the host does."""
    saved = dict(os.environ)
    os.environ.update(app_env)
    get_settings.cache_clear()
    yield app_env
    os.environ.clear()
    os.environ.update(saved)
    get_settings.cache_clear()


@pytest.fixture
async def empty_database_url(database_url: str) -> AsyncIterator[str]:
    """A new, empty database in the session's server, dropped after the test."""
    from devhost.pytest_plugin import with_database  # after pytest registered the plugin

    name = "empty_" + uuid.uuid4().hex[:12]
    admin = await asyncpg.connect(with_database(database_url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield with_database(database_url, name)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="module")
def app_host(payments_env: dict[str, str]) -> Iterator[HostThread]:
    """The app (function_app.py) served by devhost for one test module, with its trigger services
    (timers, the Durable engine: createBooking starts the payment orchestration) and the fake
    payment providers."""
    yield from serve_app(services=builtin_service_factories())


@pytest.fixture
async def api(app_host: HostThread) -> AsyncIterator[Client]:
    connector = aiohttp.TCPConnector(limit=0)  # the concurrency tests open a connection per request
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:
        yield Client(http, app_host.url)


@pytest.fixture
async def db(database_url: str, app_settings: dict[str, str]) -> AsyncIterator[asyncpg.Connection[Any]]:
    """A connection to the app's database, for seeding rows and reading them back."""
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


@pytest.fixture
def make_user(db: asyncpg.Connection[Any]) -> MakeUser:
    """Insert a user in a role, with an access token."""

    async def make(role: str) -> User:
        return await insert_user(db, role)

    return make


@pytest.fixture
def history(db: asyncpg.Connection[Any]) -> History:
    return History(db)


@pytest.fixture(scope="module")
def fakes(fake_razorpay_server: FakeRazorpay, fake_stripe_server: FakeStripe) -> tuple[FakeRazorpay, FakeStripe]:
    """The session's fake Razorpay and Stripe servers (devhost/fakes/README.md) for a module's app host."""
    return fake_razorpay_server, fake_stripe_server


@pytest.fixture(scope="module")
def payments_env(app_settings: dict[str, str], fakes: tuple[FakeRazorpay, FakeStripe]) -> Iterator[dict[str, str]]:
    """The app's payment settings pointing at `fakes`; apply before the module's host starts.

    Short provider timeouts (the outage tests hang the fakes longer), reconciliation of payments
    of any age (the tests do not wait minutes) and a host id of the module's own."""
    razorpay, stripe = fakes
    env = {
        **razorpay.app_env(),
        **stripe.app_env(),
        "PAYMENT_PROVIDER_TIMEOUT_SECONDS": "1",
        "PAYMENT_CHECKOUT_WAIT_SECONDS": "5",
        "PAYMENT_RECONCILE_MIN_AGE_SECONDS": "0",
        # Timer schedule status is kept per host id in storage: a module of its own, so virtual
        # clocks of other modules' hosts never make this module's timers look already run.
        "AzureFunctionsWebHost__hostid": f"test-{uuid.uuid4().hex[:12]}",
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    get_settings.cache_clear()
    yield env
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    get_settings.cache_clear()


@pytest.fixture(scope="module")
async def app_resources(app_settings: dict[str, str]) -> AsyncIterator[tuple[Database, Cache]]:
    """The app's pool and cache on the test loop, for service-level tests that pin `now`."""
    yield await resources.get_database(), await resources.get_cache()
    await resources.close_resources()


@pytest.fixture
def app_database(app_resources: tuple[Database, Cache]) -> Database:
    return app_resources[0]


@pytest.fixture
def app_cache(app_resources: tuple[Database, Cache]) -> Cache:
    return app_resources[1]
