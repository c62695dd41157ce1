"""The host's clock: real time in production-like runs, virtual time in tests.

Timer triggers and Durable timers both read one `Clock`, so a test can move time forward and see
every schedule that falls due fire at once, without waiting.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current UTC time (timezone-aware)."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Return once `now() >= when`."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        # Sleep in bounded steps and re-check: the wall clock may jump while we sleep.
        while (delay := (when - self.now()).total_seconds()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(min(delay, 60.0))


class VirtualClock:
    """Time that moves only when `advance` or `set` is called.

    Sleepers are kept in a heap and woken in deadline order; `advance` may be called from any thread
    (tests drive the host running on another thread's loop).
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._now

    async def sleep_until(self, when: datetime) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            if when <= self._now:
                return
            heapq.heappush(self._sleepers, (when, next(self._counter), future))
        await future

    def advance(self, delta: timedelta) -> None:
        self.set(self._now + delta)

    def set(self, when: datetime) -> None:
        with self._lock:
            if when < self._now:
                raise ValueError("a virtual clock never goes backwards")
            self._now = when
            due = []
            while self._sleepers and self._sleepers[0][0] <= when:
                due.append(heapq.heappop(self._sleepers)[2])
        for future in due:
            future.get_loop().call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
