"""A circuit breaker for the cache's Redis calls.

After a failure Redis is skipped for `cooldown_s`, so requests do not each pay a socket timeout
while it is down; then one probe is let through (half-open), and a success closes the circuit.
Each transition is logged once, not once per request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class CircuitBreaker:
    def __init__(self, cooldown_s: float, clock: Callable[[], float] = time.monotonic, name: str = "redis") -> None:
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._name = name
        self._opened_at: float | None = None
        self._probing = False
        self.trips = 0

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    def allow(self) -> bool:
        """Whether a call may go to the protected service now."""
        if self._opened_at is None:
            return True
        if self._probing or self._clock() - self._opened_at < self._cooldown_s:
            return False
        self._probing = True
        return True

    def record_success(self) -> bool:
        """Note a successful call; return True if this closed an open circuit."""
        if self._opened_at is None:
            return False
        self._opened_at, self._probing = None, False
        logger.warning("%s is reachable again; circuit closed", self._name)
        return True

    def record_failure(self, error: BaseException) -> None:
        was_closed = self._opened_at is None
        self._opened_at, self._probing = self._clock(), False
        if was_closed:
            self.trips += 1
            logger.warning(
                "%s is unreachable (%s); circuit open, falling back for %.1fs at a time",
                self._name,
                type(error).__name__,
                self._cooldown_s,
            )
