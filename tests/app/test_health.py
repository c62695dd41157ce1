"""The app served by devhost over real HTTP: health, and reads that survive a Redis outage."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from devhost.services import Stack
from devhost.testing import HostThread
from shared.health.service import CheckResult, HealthReport, check_health


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def get_json(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as response:
        return response.status, json.loads(await response.read())


async def test_health_is_ok_when_every_dependency_answers(app_host: HostThread, http: aiohttp.ClientSession) -> None:
    status, body = await get_json(http, f"{app_host.url}/api/health")
    assert status == 200
    assert body["status"] == "ok"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "ok",
        "redis": "ok",
        "storage": "ok",
    }
    assert {"hits", "misses"} <= set(body["cache"])


async def test_ui_config_is_served_through_the_cache(app_host: HostThread, http: aiohttp.ClientSession) -> None:
    first = await get_json(http, f"{app_host.url}/api/admin/ui-config")
    second = await get_json(http, f"{app_host.url}/api/admin/ui-config")
    assert first == second
    assert first[0] == 200
    assert first[1]["features"]["chat"] is True
    _, health = await get_json(http, f"{app_host.url}/api/health")
    assert health["cache"]["hits"] >= 1


async def test_killing_redis_degrades_health_without_failing_cached_reads(
    app_host: HostThread, http: aiohttp.ClientSession, stack: Stack
) -> None:
    if stack.redis is None:
        pytest.skip("Redis was given by REDIS_URL; the test only stops a Redis it started")
    url = f"{app_host.url}/api/admin/ui-config"
    expected = await get_json(http, url)
    stack.redis.stop()
    try:
        reads = await asyncio.gather(*(get_json(http, url) for _ in range(50)))
        assert reads == [expected] * 50
        status, health = await get_json(http, f"{app_host.url}/api/health")
        assert status == 200
        assert health["status"] == "degraded"
        assert health["checks"]["redis"]["status"] == "error"
        assert health["checks"]["database"]["status"] == "ok"
    finally:
        stack.redis.start()
    for _ in range(50):  # the breaker probes again after its cooldown and closes by itself
        status, health = await get_json(http, f"{app_host.url}/api/health")
        if health["status"] == "ok":
            break
        await asyncio.sleep(0.2)
    assert (status, health["status"]) == (200, "ok")
    assert await get_json(http, url) == expected


async def test_a_database_outage_is_unhealthy_and_redis_storage_outages_are_degraded() -> None:
    async def up() -> bool:
        return True

    async def down() -> bool:
        raise ConnectionRefusedError

    async def hangs() -> bool:
        await asyncio.sleep(10)
        return True

    report = await check_health(down, up, up, {})
    assert report.status == "unhealthy"
    assert report.as_dict()["checks"]["database"] == {
        "status": "error",
        "latency_ms": report.database.latency_ms.__round__(1),
        "error": "ConnectionRefusedError",
    }
    assert (await check_health(up, down, up, {})).status == "degraded"
    assert (await check_health(up, up, down, {})).status == "degraded"
    ok = CheckResult(True, 1.0)
    assert HealthReport(ok, ok, ok, {}).status == "ok"
    assert "timeout" in json.dumps((await asyncio.wait_for(_with_short_timeout(hangs), 5)).as_dict())


async def _with_short_timeout(probe: Any) -> CheckResult:
    from shared.health.service import run_check

    return await run_check(probe, timeout_s=0.05)
