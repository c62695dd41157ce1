"""Health of the app's dependencies, for probes and operators.

The database is a hard dependency: without it the status is "unhealthy" (HTTP 503, so a load
balancer takes the instance out). Redis and Blob storage are soft: reads fall back to the database
while Redis is down, so their loss makes the app "degraded" but still serving (HTTP 200).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

CHECK_TIMEOUT_S = 2.0

Status = Literal["ok", "degraded", "unhealthy"]


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    latency_ms: float
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"status": "ok" if self.ok else "error", "latency_ms": round(self.latency_ms, 1)}
        if self.error:
            result["error"] = self.error
        return result


@dataclass(frozen=True)
class HealthReport:
    database: CheckResult
    redis: CheckResult
    storage: CheckResult
    cache: dict[str, Any]

    @property
    def status(self) -> Status:
        if not self.database.ok:
            return "unhealthy"
        return "ok" if self.redis.ok and self.storage.ok else "degraded"

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "checks": {
                "database": self.database.as_dict(),
                "redis": self.redis.as_dict(),
                "storage": self.storage.as_dict(),
            },
            "cache": self.cache,
        }


Probe = Callable[[], Awaitable[bool]]


async def run_check(probe: Probe, timeout_s: float = CHECK_TIMEOUT_S) -> CheckResult:
    """Run one probe with a deadline; a timeout or an exception is a failed check, never a crash."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            ok = await probe()
        error = None if ok else "unreachable"
    except TimeoutError:
        ok, error = False, "timeout"
    except Exception as exc:
        ok, error = False, type(exc).__name__
    return CheckResult(ok, (time.perf_counter() - started) * 1000, error)


async def check_health(database: Probe, redis: Probe, storage: Probe, cache_stats: dict[str, Any]) -> HealthReport:
    db, rd, st = await asyncio.gather(run_check(database), run_check(redis), run_check(storage))
    return HealthReport(db, rd, st, cache_stats)
