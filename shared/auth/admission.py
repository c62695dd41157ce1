"""Login admission: a token bucket refilled at a share of the measured bcrypt capacity.

The capacity is `parallelism / CPU seconds per check`, where the CPU time is what the bcrypt thread
itself spent (`time.thread_time`), not the wall-clock time of the check: wall time grows whenever
the machine is busy with other work, which used to shrink the admitted rate exactly when the
measurement was least reliable. `parallelism` is the cores' worth of checks this process may run at
once: its bcrypt threads, but no more than the cores it may use, divided among the instance's
worker processes (FUNCTIONS_WORKER_PROCESS_COUNT) that share them, so that together they admit
`share` of the instance, not `share` each.

The decision needs no I/O, so login calls it before touching Redis or PostgreSQL: a shed login
costs a few microseconds, never a round trip.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable

from shared.errors import ServiceUnavailable

# Weight of the newest value in the running means of check CPU time and job wall time.
_SMOOTHING = 0.2


class LoginShed(ServiceUnavailable):
    code = "login_overloaded"
    title = "Too many logins right now; retry shortly"


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask), which `taskset` or a cgroup may narrow."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def running_mean(previous: float | None, newest: float) -> float:
    """An exponentially weighted mean: `newest` moves it a fifth of the way from `previous`."""
    return newest if previous is None else (1 - _SMOOTHING) * previous + _SMOOTHING * newest


class LoginAdmission:
    """Admits logins at no more than `share` of the bcrypt capacity, in bursts of `parallelism` (at least 2)."""

    def __init__(self, *, share: float, parallelism: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.share = share
        self.parallelism = parallelism
        # At least 2: with a burst of 1, a token that fills up between two arrivals is lost, and a
        # single core reached 77 % of its ceiling with logins offered at twice it.
        self._burst = max(2.0, parallelism)
        self._clock = clock
        self._check_cpu_s: float | None = None
        self._tokens = self._burst
        self._refilled_at = clock()
        self.shed = 0

    @property
    def check_cpu_s(self) -> float | None:
        """The running mean of CPU seconds per bcrypt check, once one was measured."""
        return self._check_cpu_s

    @property
    def capacity_per_s(self) -> float | None:
        """bcrypt checks per second this process can do with every bcrypt thread on a core of its own."""
        return None if self._check_cpu_s is None else self.parallelism / self._check_cpu_s

    @property
    def rate_per_s(self) -> float | None:
        """Logins per second admitted: `share` of the capacity (None until a check was measured)."""
        capacity = self.capacity_per_s
        return None if capacity is None else self.share * capacity

    def record_check(self, cpu_s: float) -> None:
        """Feed the CPU seconds one check took into the running mean."""
        if cpu_s <= 0:
            return
        self._check_cpu_s = running_mean(self._check_cpu_s, cpu_s)

    def admit(self) -> None:
        """Take one login from the budget, or raise LoginShed (503 + Retry-After) at once."""
        rate = self.rate_per_s
        if rate is None:
            return  # nothing measured yet: the executor's own bound still applies
        self._refill(rate)
        if self._tokens < 1.0:
            self.shed += 1
            raise LoginShed(retry_after_s=max(1, math.ceil((1.0 - self._tokens) / rate)))
        self._tokens -= 1.0

    def refund(self) -> None:
        """Give back an admitted login that never reached bcrypt (it was rate-limited, say)."""
        self._tokens = min(self._burst, self._tokens + 1.0)

    def _refill(self, rate: float) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._refilled_at)
        self._tokens = min(self._burst, self._tokens + elapsed * rate)
        self._refilled_at = now
