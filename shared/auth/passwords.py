"""bcrypt hashing and checking, always off the event loop, in a bounded executor that sheds load.

bcrypt releases the GIL, so `threads` checks run in parallel on as many cores (performance.md §6).
At most `threads + queue_size` hashes are admitted at once; beyond that the caller gets 503 with
Retry-After straight away instead of queueing until the client times out. Logins are further
admitted at no more than `login_share` of the measured bcrypt capacity, so the rest of the API keeps
CPU while logins pour in.

bcrypt only reads the first 72 bytes of a password; longer ones are refused by the API models
(`MAX_PASSWORD_BYTES`) rather than truncated silently.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import bcrypt

from shared.errors import ServiceUnavailable

MAX_PASSWORD_BYTES = 72
T = TypeVar("T")


class LoginShed(ServiceUnavailable):
    code = "login_overloaded"
    title = "Too many logins right now; retry shortly"


class PasswordHasher:
    """Hashes and checks passwords on a dedicated thread pool with bounded admission."""

    def __init__(
        self,
        *,
        cost: int,
        threads: int,
        queue_size: int,
        login_share: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cost = cost
        self.threads = threads
        self._capacity = threads + queue_size
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bcrypt")
        self._in_use = 0
        self._login_share = login_share
        self._clock = clock
        self._mean_check_s: float | None = None
        self._login_tokens = float(threads)
        self._login_refilled_at = clock()
        self._decoy: bytes | None = None
        self.shed = 0

    @property
    def login_rate_limit(self) -> float | None:
        """Logins per second admitted (share * threads / mean check time), once a check was timed."""
        if self._mean_check_s is None:
            return None
        return self._login_share * self.threads / self._mean_check_s

    async def hash(self, password: str) -> str:
        """A new bcrypt hash of `password` at the configured cost."""
        salt = bcrypt.gensalt(self.cost)
        digest = await self._run(bcrypt.hashpw, password.encode(), salt)
        return digest.decode()

    async def check(self, password: str, password_hash: str | None) -> bool:
        """Whether `password` matches `password_hash`.

        With no hash (unknown or deleted account) a decoy hash of the same cost is checked, so the
        answer takes as long as for a wrong password and reveals nothing by its timing.
        """
        if self._decoy is None:
            self._decoy = await self._run(bcrypt.hashpw, b"decoy password", bcrypt.gensalt(self.cost))
        candidate = password.encode()
        if password_hash is None:
            await self._run(self._timed_check, candidate, self._decoy)
            return False
        return await self._run(self._timed_check, candidate, password_hash.encode())

    def admit_login(self) -> None:
        """Take one login slot from the rate budget, or raise LoginShed (503 + Retry-After)."""
        rate = self.login_rate_limit
        if rate is None:
            return
        now = self._clock()
        burst = max(1.0, float(self.threads))
        self._login_tokens = min(burst, self._login_tokens + (now - self._login_refilled_at) * rate)
        self._login_refilled_at = now
        if self._login_tokens < 1.0:
            self.shed += 1
            raise LoginShed(retry_after_s=max(1, math.ceil((1.0 - self._login_tokens) / rate)))
        self._login_tokens -= 1.0

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether `password_hash` was made at a lower cost than the configured one (or is unreadable).

        A stronger hash is kept when the cost is lowered: rewriting it would weaken it for nothing.
        """
        parts = password_hash.split("$")
        return len(parts) < 3 or not parts[2].isdigit() or int(parts[2]) < self.cost

    async def upgraded_hash(self, password: str, password_hash: str) -> str | None:
        """A new hash of `password` at the configured cost when `password_hash` needs one, else None.

        Best effort: when the executor is full the upgrade waits for a later login instead of
        failing this one.
        """
        if not self.needs_rehash(password_hash):
            return None
        try:
            return await self.hash(password)
        except LoginShed:
            return None

    def _timed_check(self, password: bytes, password_hash: bytes) -> bool:
        started = time.perf_counter()
        try:
            return bcrypt.checkpw(password, password_hash)
        finally:
            elapsed = time.perf_counter() - started
            # A plain running mean of recent checks (the GIL is released around checkpw only).
            previous = self._mean_check_s
            self._mean_check_s = elapsed if previous is None else 0.8 * previous + 0.2 * elapsed

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        if self._in_use >= self._capacity:
            self.shed += 1
            raise LoginShed(retry_after_s=max(1, math.ceil(self._in_use / self.threads * (self._mean_check_s or 0.3))))
        self._in_use += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self._in_use -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
