"""Shared helpers for the tests that serve `apps/durable_http_client` through devhost over HTTP."""

from __future__ import annotations

from pathlib import Path

from devhost.clock import VirtualClock
from devhost.host import builtin_service_factories
from devhost.testing import HostThread

CLIENT_APP = Path(__file__).parent / "apps" / "durable_http_client"


def serve(clock: VirtualClock) -> HostThread:
    """The client app on a HostThread with the built-in services (the Durable engine among them)."""
    return HostThread(CLIENT_APP, clock=clock, services=builtin_service_factories())
