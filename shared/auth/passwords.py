"""bcrypt hashing and checking, always off the event loop, in a bounded executor that sheds load.

bcrypt releases the GIL, so `threads` checks run in parallel on as many cores (performance.md §6).
At most `threads + queue_size` hashes are admitted at once; beyond that the caller gets 503 with
Retry-After straight away instead of queueing until the client times out. A hash that still
waited for a thread after `max_wait_s` (the machine got busier than its admission assumed) is
not started but answered with 503 too, so a login never outlives its client; and a hash that
would likely wait more than half of it (from the recent wall time per job) is refused at once,
so the machine's being busy shows as a fast 503, not a slow one. Logins are further
admitted at no more than `login_share` of the measured bcrypt capacity (shared/auth/admission.py),
so the rest of the API keeps CPU while logins pour in.

The bcrypt threads run at a lower scheduling priority (`nice`, Linux only): whenever the event
loop, PostgreSQL or Redis have work, the kernel runs them first, and bcrypt gets every CPU cycle
nobody else wants. Login alone still uses all cores; the other routes keep their latency under
login load.

bcrypt only reads the first 72 bytes of a password; longer ones are refused by the API models
(`MAX_PASSWORD_BYTES`) rather than truncated silently.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import bcrypt

from shared.auth.admission import LoginAdmission, LoginShed, running_mean, usable_cores
from shared.config import Settings

__all__ = ["MAX_PASSWORD_BYTES", "LoginShed", "PasswordHasher"]

MAX_PASSWORD_BYTES = 72
T = TypeVar("T")
logger = logging.getLogger(__name__)


def lower_thread_priority(nice: int) -> None:
    """Raise the calling thread's nice value to at least `nice` (Linux: nice is per thread)."""
    if nice <= 0 or not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, max(current, min(nice, 19)))
    except OSError as exc:  # never fatal: bcrypt then competes at normal priority
        logger.warning("could not lower the bcrypt thread's priority: %s", exc)


class PasswordHasher:
    """Hashes and checks passwords on a dedicated thread pool with bounded admission."""

    def __init__(
        self,
        *,
        cost: int,
        threads: int,
        queue_size: int,
        login_share: float = 1.0,
        nice: int = 0,
        max_wait_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        cores: int | None = None,
        worker_processes: int = 1,
    ) -> None:
        self.cost = cost
        self.threads = threads
        self._capacity = threads + queue_size
        self._executor = ThreadPoolExecutor(
            max_workers=threads,
            thread_name_prefix="bcrypt",
            initializer=lower_thread_priority,
            initargs=(nice,),
        )
        self._in_use = 0
        self._max_wait_s = max_wait_s
        self._clock = clock
        self.admission = LoginAdmission(
            share=login_share, parallelism=min(threads, (cores or usable_cores()) / worker_processes), clock=clock
        )
        self._decoys: dict[int, bytes] = {}
        self._queue_shed = 0
        self._job_wall_s: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> PasswordHasher:
        return cls(
            cost=settings.bcrypt_cost,
            threads=settings.bcrypt_threads,
            queue_size=settings.bcrypt_queue_size,
            login_share=settings.login_admission_share,
            nice=settings.bcrypt_nice,
            max_wait_s=settings.bcrypt_max_wait_s,
            worker_processes=settings.worker_process_count,
        )

    @property
    def shed(self) -> int:
        """Hashes refused so far, by the login budget or because the executor was full."""
        return self.admission.shed + self._queue_shed

    @property
    def login_rate_limit(self) -> float | None:
        """Logins per second admitted (share of the capacity measured in CPU time), once a check ran."""
        return self.admission.rate_per_s

    async def hash(self, password: str) -> str:
        """A new bcrypt hash of `password` at the configured cost."""
        salt = bcrypt.gensalt(self.cost)
        digest = await self._run(bcrypt.hashpw, password.encode(), salt)
        return digest.decode()

    async def check(self, password: str, password_hash: str | None) -> bool:
        """Whether `password` matches `password_hash`, after as much bcrypt work as a current-cost check.

        With no hash (unknown or deleted account) a decoy hash of the configured cost is checked, so
        the answer takes as long as for a wrong password and reveals nothing by its timing. A hash
        made at a lower cost (kept from before BCRYPT_COST was raised, or never upgraded because the
        account is deactivated) is padded with decoy checks up to the configured cost (see
        `padding_costs`), so it is not told apart from an unknown email either.
        """
        target = None if password_hash is None else password_hash.encode()
        padding = padding_costs(password_hash, self.cost)
        matches, cpu_s = await self._run(self._timed_check, password.encode(), target, padding)
        self.admission.record_check(cpu_s)
        return matches and password_hash is not None

    def _timed_check(self, password: bytes, target: bytes | None, padding: list[int]) -> tuple[bool, float]:
        """checkpw against `target` (or the decoy at the configured cost), then the padding decoys,
        and the CPU seconds this thread spent on the checks (runs on a bcrypt thread)."""
        first = target if target is not None else self._decoy_at(self.cost)
        decoys = [self._decoy_at(cost) for cost in padding]
        started = time.thread_time()
        matches = bcrypt.checkpw(password, first)
        for decoy in decoys:
            bcrypt.checkpw(password, decoy)
        return matches, time.thread_time() - started

    def _decoy_at(self, cost: int) -> bytes:
        """A hash of a password nobody has, at `cost`: made once per cost (on a bcrypt thread)."""
        if (decoy := self._decoys.get(cost)) is None:
            decoy = self._decoys[cost] = bcrypt.hashpw(b"decoy password", bcrypt.gensalt(cost))
        return decoy

    def admit_login(self) -> None:
        """Decide, with no I/O, whether a login may go ahead; raise LoginShed (503) if not.

        A login is refused when the executor is full, or so busy that the hash would likely wait
        past half of `max_wait_s` (it would be shed after its database read anyway, or after the
        wait), or when logins are over their share of the bcrypt capacity.
        """
        self._refuse_if_full()
        self.admission.admit()

    def record_job_time(self, wall_s: float) -> None:
        """Feed the wall-clock seconds one bcrypt job took on its thread into the running mean.

        Unlike the CPU time that sizes admission, wall time grows when the machine gives bcrypt less
        than its cores, which is what the wait in the queue depends on.
        """
        self._job_wall_s = running_mean(self._job_wall_s, wall_s)

    def _refuse_if_full(self) -> None:
        if self._in_use >= self._capacity or self._would_wait_too_long():
            self._queue_shed += 1
            raise LoginShed(retry_after_s=self._queue_retry_after_s())

    def _would_wait_too_long(self) -> bool:
        """Whether a job admitted now would likely wait more than half of `max_wait_s` for a thread.

        Half, because the prediction is a mean: a job that waits longer than predicted is still
        answered rather than shed after its wait, in all but rare cases (measured: without this, a
        core busy with other requests let queued logins be shed after 2 s instead of at once).
        """
        if self._max_wait_s is None or self._job_wall_s is None or self._in_use < self.threads:
            return False
        jobs_to_finish_first = self._in_use - self.threads + 1
        return jobs_to_finish_first * self._job_wall_s / self.threads > self._max_wait_s / 2

    def refund_login(self) -> None:
        """Return an admitted login's slot when it stopped before bcrypt (a rate limit answered)."""
        self.admission.refund()

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether `password_hash` was made at a lower cost than the configured one (or is unreadable).

        A stronger hash is kept when the cost is lowered: rewriting it would weaken it for nothing.
        """
        cost = hash_cost(password_hash)
        return cost is None or cost < self.cost

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

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        self._refuse_if_full()
        self._in_use += 1
        try:
            outcome = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._unless_stale, self._start_by(), fn, args
            )
        finally:
            self._in_use -= 1
        if isinstance(outcome, _Stale):
            self._queue_shed += 1
            raise LoginShed(retry_after_s=self._queue_retry_after_s())
        result, wall_s = outcome
        self.record_job_time(wall_s)
        return result

    def _start_by(self) -> float:
        return math.inf if self._max_wait_s is None else self._clock() + self._max_wait_s

    def _unless_stale(
        self, start_by: float, fn: Callable[..., T], args: tuple[object, ...]
    ) -> tuple[T, float] | _Stale:
        """Run `fn` on a bcrypt thread, unless the job waited in the queue past `start_by`; its
        result and the wall-clock seconds it took."""
        if self._clock() > start_by:
            return _STALE
        started = time.perf_counter()
        result = fn(*args)
        return result, time.perf_counter() - started

    def _queue_retry_after_s(self) -> int:
        per_check_s = self.admission.check_cpu_s or 0.3
        return max(1, math.ceil(self._in_use / self.threads * per_check_s))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class _Stale:
    """The job waited too long for a thread and was not run."""


_STALE = _Stale()


def hash_cost(password_hash: str) -> int | None:
    """The bcrypt cost a hash was made with (`$2b$12$...` -> 12), or None if it is unreadable."""
    parts = password_hash.split("$")
    return int(parts[2]) if len(parts) >= 3 and parts[2].isdigit() else None


def padding_costs(password_hash: str | None, cost: int) -> list[int]:
    """The costs of the decoy checks that follow a check of `password_hash`, so that the whole takes
    as long as one check at `cost`.

    A check at cost c takes time proportional to 2^c, and 2^c + 2^c + 2^(c+1) + ... + 2^(cost-1) =
    2^cost: a hash below the configured cost is followed by decoys at c, c+1, ..., cost-1. A hash at
    or above the cost needs none. A stronger hash (kept when BCRYPT_COST was lowered) takes longer
    than an unknown email, which nothing can pad away without slowing every login down to the
    strongest cost ever used: lowering BCRYPT_COST accepts that those accounts stand out by timing
    until their owners change their password.
    """
    stored = None if password_hash is None else hash_cost(password_hash)
    if stored is None or stored >= cost:
        return []
    return list(range(stored, cost))
