"""An open-loop, fixed-rate HTTP load generator (no coordinated omission) and a closed-loop probe.

Open loop: request i is due at start + i / rate whether or not earlier ones have answered, and its
latency is measured from that due time, so a stalled server shows up as latency instead of as a
generator that quietly slows down (performance.md §7). `users` caps the connections in flight:
requests beyond it queue in the client, and that queueing counts in their latency.

Closed loop: `connections` workers send back to back for a fixed time; it measures throughput.

A target is a URL (GET) or a `Request` (any method, JSON body, headers). With `shed_ok`, a 503
that carries Retry-After is load shedding working as designed: its latency is kept apart
(`shed_latencies_ms`) instead of counting as a failure; a 503 without Retry-After still fails.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Request:
    url: str
    method: str = "GET"
    json: Any = None
    headers: Mapping[str, str] | None = None


Target = Callable[[int], "str | Request"]


@dataclass
class Result:
    offered_rps: float
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0
    statuses: dict[int | str, int] = field(default_factory=dict)
    generator_cpu_s: float = 0.0
    shed_latencies_ms: list[float] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + len(self.shed_latencies_ms) + self.failures

    @property
    def success(self) -> float:
        return len(self.latencies_ms) / self.requests if self.requests else 0.0

    def percentile(self, p: float) -> float:
        return percentile(self.latencies_ms, p)

    def shed_percentile(self, p: float) -> float:
        return percentile(self.shed_latencies_ms, p)

    @property
    def achieved_rps(self) -> float:
        return len(self.latencies_ms) / self.seconds


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _one(
    session: aiohttp.ClientSession, target: str | Request, due: float, result: Result, *, shed_ok: bool = False
) -> None:
    request = target if isinstance(target, Request) else Request(target)
    try:
        async with session.request(request.method, request.url, json=request.json, headers=request.headers) as response:
            await response.read()
            status = response.status
            retry_after = response.headers.get("Retry-After")
    except (aiohttp.ClientError, TimeoutError) as exc:
        result.failures += 1
        result.statuses[type(exc).__name__] = result.statuses.get(type(exc).__name__, 0) + 1
        return
    elapsed_ms = (time.perf_counter() - due) * 1000
    key: int | str = status if status != 503 or retry_after else "503 without Retry-After"
    result.statuses[key] = result.statuses.get(key, 0) + 1
    if status == 200:
        result.latencies_ms.append(elapsed_ms)
    elif shed_ok and status == 503 and retry_after:
        result.shed_latencies_ms.append(elapsed_ms)
    else:
        result.failures += 1


async def open_loop(url_for: Target, *, rate: float, seconds: float, users: int, shed_ok: bool = False) -> Result:
    """Send `rate` requests/s for `seconds` with at most `users` connections; wait for stragglers."""
    result = Result(offered_rps=rate, seconds=seconds)
    connector = aiohttp.TCPConnector(limit=users, force_close=False)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    cpu_before = _cpu()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter()
        total = int(rate * seconds)
        tasks = []
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_one(session, url_for(i), due, result, shed_ok=shed_ok)))
        await asyncio.gather(*tasks)
    result.generator_cpu_s = _cpu() - cpu_before
    return result


async def closed_loop(url_for: Target, *, connections: int, seconds: float) -> Result:
    """`connections` workers sending back to back for `seconds`: the throughput the server sustains."""
    result = Result(offered_rps=0.0, seconds=seconds)
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    counter = iter(range(10**9))
    cpu_before = _cpu()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                await _one(session, url_for(next(counter)), time.perf_counter(), result)

        await asyncio.gather(*(worker() for _ in range(connections)))
    result.generator_cpu_s = _cpu() - cpu_before
    return result
