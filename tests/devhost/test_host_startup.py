"""Requests that arrive while the host is still starting its trigger services are held, not failed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from devhost import http_server
from devhost.host import Host

SHAPE_APP = Path(__file__).parent / "apps" / "shape"


class SlowService:
    """A trigger service whose start the test releases (a Durable store opening, say)."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()  # the listener is open by then: services need its URL
        self.release = asyncio.Event()

    async def start(self) -> None:
        self.entered.set()
        await self.release.wait()

    async def stop(self) -> None:
        return None


async def test_a_request_during_start_up_waits_for_the_services() -> None:
    slow = SlowService()
    host = Host(SHAPE_APP, port=0, services=[lambda _ctx: slow])
    starting = asyncio.create_task(host.start())
    try:
        await slow.entered.wait()
        base = host.context.base_url
        async with aiohttp.ClientSession() as client:
            status = await client.get(f"{base}/admin/host/status")
            assert (await status.json())["state"] == "Initialized"
            request = asyncio.create_task(client.get(f"{base}/api/text"))
            await asyncio.sleep(0.2)
            assert not request.done()
            slow.release.set()
            response = await request
            assert response.status == 200
            status = await client.get(f"{base}/admin/host/status")
            assert (await status.json())["state"] == "Running"
    finally:
        slow.release.set()
        await starting
        await host.stop()


async def test_a_host_that_never_finishes_starting_answers_503(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_server, "HOST_START_TIMEOUT_S", 0.2)
    slow = SlowService()
    host = Host(SHAPE_APP, port=0, services=[lambda _ctx: slow])
    starting = asyncio.create_task(host.start())
    try:
        await slow.entered.wait()
        base = host.context.base_url
        async with aiohttp.ClientSession() as client, client.get(f"{base}/api/text") as response:
            assert response.status == 503
            assert await response.text() == "Function host is not running."
    finally:
        slow.release.set()
        await starting
        await host.stop()
