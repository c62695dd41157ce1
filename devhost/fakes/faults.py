"""Failure switches for a fake provider: delays, 5xx answers and hangs on the next N calls of a route.

Routes are named like the provider's API reference, method and path template:
"POST /v1/orders", "GET /v1/payments/{id}"; "*" matches every route. A hang sleeps before the
request is handled and then handles it, so a client that gave up (timeout) may still have caused
the effect: exactly the case idempotency keys exist for (with `happen=False` the request is lost
instead). An error answer is given instead of handling the request: nothing happened.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Literal

ANY_ROUTE = "*"


@dataclass
class Fault:
    kind: Literal["error", "hang"]
    times: int
    status: int = 500
    seconds: float = 0.0
    happen: bool = True


@dataclass(frozen=True)
class Decision:
    """What to do with one call: wait `delay` seconds, then answer `error_status` or handle it."""

    delay: float = 0.0
    error_status: int | None = None


class Faults:
    """Thread-safe: set from tests, read by the server's handlers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: dict[str, list[Fault]] = {}
        self._delays: dict[str, float] = {}
        self.calls: Counter[str] = Counter()

    def fail_next(self, route: str, times: int = 1, *, status: int = 500) -> None:
        """The next `times` calls of `route` answer `status` with the provider's error body."""
        self._queue(route, Fault("error", times, status=status))

    def hang_next(self, route: str, times: int = 1, *, seconds: float = 5.0, happen: bool = True) -> None:
        """The next `times` calls of `route` sleep `seconds` (client timeouts), then are handled, or
        with `happen=False` answered 504 without effect (the request was lost on the way)."""
        self._queue(route, Fault("hang", times, status=504, seconds=seconds, happen=happen))

    def delay(self, route: str, seconds: float) -> None:
        """Every call of `route` waits `seconds` first (0 removes the delay)."""
        with self._lock:
            if seconds > 0:
                self._delays[route] = seconds
            else:
                self._delays.pop(route, None)

    def clear(self) -> None:
        """Remove every switch (the call counts stay)."""
        with self._lock:
            self._queued.clear()
            self._delays.clear()

    def reset(self) -> None:
        self.clear()
        with self._lock:
            self.calls.clear()

    def _queue(self, route: str, fault: Fault) -> None:
        if fault.times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._queued.setdefault(route, []).append(fault)

    def decide(self, route: str) -> Decision:
        """Count a call of `route` and consume the fault that applies to it, if any."""
        with self._lock:
            self.calls[route] += 1
            delay = self._delays.get(route, self._delays.get(ANY_ROUTE, 0.0))
            for key in (route, ANY_ROUTE):
                queue = self._queued.get(key)
                if not queue:
                    continue
                fault = queue[0]
                fault.times -= 1
                if fault.times == 0:
                    queue.pop(0)
                if fault.kind == "error":
                    return Decision(delay=delay, error_status=fault.status)
                return Decision(delay=delay + fault.seconds, error_status=None if fault.happen else fault.status)
            return Decision(delay=delay)
