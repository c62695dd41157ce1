"""Login admission: sized from bcrypt CPU time, decided with an injected clock, before any I/O."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from typing import Any

import bcrypt
import pytest
from accounts_client import Api

from devhost.testing import HostThread
from shared import resources
from shared.accounts import service
from shared.accounts.models import Credentials
from shared.auth.admission import LoginAdmission, LoginShed, usable_cores
from shared.auth.passwords import PasswordHasher
from shared.config import get_settings, load_settings
from shared.errors import TooManyRequests

VALID_SETTINGS = {
    "DATABASE_URL": "postgresql://app:secret@db.example:5432/codeconnect",
    "REDIS_URL": "redis://cache.example:6379/0",
    "AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_nothing_is_shed_before_a_check_was_measured() -> None:
    admission = LoginAdmission(share=0.7, parallelism=2, clock=Clock())
    for _ in range(50):
        admission.admit()
    assert admission.rate_per_s is None and admission.shed == 0


def test_the_rate_is_the_share_of_parallelism_over_check_cpu_time() -> None:
    admission = LoginAdmission(share=0.7, parallelism=2, clock=Clock())
    admission.record_check(0.25)
    assert admission.capacity_per_s == 8.0
    assert admission.rate_per_s == pytest.approx(5.6)
    admission.record_check(0.5)  # a running mean: one slow check moves it a fifth of the way
    assert admission.check_cpu_s == pytest.approx(0.3)
    admission.record_check(0.0)  # no CPU measured (a clock that did not tick): ignored
    assert admission.check_cpu_s == pytest.approx(0.3)


def test_bursts_of_parallelism_then_exactly_the_rate_with_retry_after() -> None:
    clock = Clock()
    admission = LoginAdmission(share=1.0, parallelism=2, clock=clock)
    admission.record_check(0.5)  # 4 logins/s
    admission.admit()
    admission.admit()
    with pytest.raises(LoginShed) as shed:
        admission.admit()
    assert shed.value.status == 503 and shed.value.retry_after_s == 1
    for _ in range(40):  # 10 s in steps of 250 ms: exactly one login per step at 4/s
        clock.now += 0.25
        admission.admit()
        with pytest.raises(LoginShed):
            admission.admit()
    assert admission.shed == 41


def test_an_idle_period_never_saves_up_more_than_one_burst() -> None:
    clock = Clock()
    admission = LoginAdmission(share=1.0, parallelism=2, clock=clock)
    admission.record_check(0.5)
    clock.now += 3600
    admission.admit()
    admission.admit()
    with pytest.raises(LoginShed):
        admission.admit()


def test_retry_after_covers_the_wait_for_the_next_slot_at_slow_rates() -> None:
    clock = Clock()
    admission = LoginAdmission(share=0.5, parallelism=1, clock=clock)
    admission.record_check(2.0)  # 0.25 logins/s: the next slot is 4 s away
    admission.admit()
    admission.admit()  # the burst: at least 2
    with pytest.raises(LoginShed) as shed:
        admission.admit()
    assert shed.value.retry_after_s == 4


def test_a_refund_gives_the_slot_back_without_exceeding_the_burst() -> None:
    clock = Clock()
    admission = LoginAdmission(share=1.0, parallelism=1, clock=clock)
    admission.record_check(1.0)
    admission.admit()
    admission.refund()
    admission.refund()  # never more than one burst (2)
    admission.admit()
    admission.admit()
    with pytest.raises(LoginShed):
        admission.admit()


def test_one_core_offered_twice_its_rate_admits_its_whole_rate() -> None:
    clock = Clock()
    admission = LoginAdmission(share=1.0, parallelism=1, clock=clock)
    admission.record_check(0.235)  # 4.26 logins/s, this machine's core at cost 12
    admitted = 0
    for i in range(180):  # 21 s of logins at 8.5/s on average, as unevenly as a network delivers them
        clock.now += (0.050, 0.135, 0.168)[i % 3]
        try:
            admission.admit()
            admitted += 1
        except LoginShed:
            pass
    assert admitted >= 0.97 * 21.18 / 0.235  # with a burst of 1, 67 %: a token filling up meanwhile was lost


def test_parallelism_is_capped_by_the_cores_the_process_may_use() -> None:
    hasher = PasswordHasher(cost=4, threads=8, queue_size=0, cores=2)
    try:
        assert hasher.admission.parallelism == 2
    finally:
        hasher.close()


async def test_check_time_is_measured_in_cpu_seconds_not_wall_clock() -> None:
    hasher = PasswordHasher(cost=4, threads=1, queue_size=0)
    hashed = await hasher.hash("pw")
    real = bcrypt.checkpw

    def waiting_check(password: bytes, hashed: bytes) -> bool:
        time.sleep(0.3)  # wall-clock time a busy machine would add; no CPU spent
        return real(password, hashed)

    bcrypt.checkpw = waiting_check  # type: ignore[assignment]
    try:
        assert await hasher.check("pw", hashed)
    finally:
        bcrypt.checkpw = real
        hasher.close()
    assert hasher.admission.check_cpu_s is not None
    assert hasher.admission.check_cpu_s < 0.3


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux only")
async def test_bcrypt_threads_run_at_the_configured_lower_priority() -> None:
    hasher = PasswordHasher(cost=4, threads=1, queue_size=0, nice=7)
    seen: list[int] = []
    real = bcrypt.checkpw

    def spy(password: bytes, hashed: bytes) -> bool:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return real(password, hashed)

    hashed = await hasher.hash("pw")
    bcrypt.checkpw = spy  # type: ignore[assignment]
    try:
        assert await hasher.check("pw", hashed)
    finally:
        bcrypt.checkpw = real
        hasher.close()
    assert seen and seen[0] >= 7
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < 7  # the loop's thread is untouched


def test_worker_processes_sharing_the_cores_admit_the_share_of_the_instance_together() -> None:
    alone = PasswordHasher(cost=4, threads=2, queue_size=0, login_share=0.5, cores=2)
    two = [PasswordHasher(cost=4, threads=2, queue_size=0, login_share=0.5, cores=2, worker_processes=2) for _ in "ab"]
    three_cores = PasswordHasher(cost=4, threads=2, queue_size=0, cores=3, worker_processes=2)
    try:
        for hasher in [alone, *two, three_cores]:
            hasher.admission.record_check(0.25)
        assert alone.login_rate_limit == 4.0  # half of 2 cores / 0.25 s
        assert [h.login_rate_limit for h in two] == [2.0, 2.0]  # 4.0 together, not 8.0
        assert three_cores.admission.parallelism == 1.5
        for hasher in two:  # each has half the cores, yet a burst of 2
            hasher.admit_login()
            hasher.admit_login()
            with pytest.raises(LoginShed):
                hasher.admit_login()
    finally:
        for hasher in [alone, *two, three_cores]:
            hasher.close()


def test_the_worker_process_count_reaches_the_hasher_from_settings() -> None:
    env = {**VALID_SETTINGS, "BCRYPT_THREADS": "4", "FUNCTIONS_WORKER_PROCESS_COUNT": "2", "BCRYPT_COST": "5"}
    hasher = PasswordHasher.from_settings(load_settings(env))
    try:
        assert hasher.cost == 5 and hasher.threads == 4
        assert hasher.admission.parallelism == usable_cores() / 2
    finally:
        hasher.close()


class Untouchable:
    """Stands for Redis and PostgreSQL: any use fails the test."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, attribute: str) -> Any:
        raise AssertionError(f"a shed login touched {self.name}.{attribute}")


def exhausted_hasher() -> PasswordHasher:
    clock = Clock()
    hasher = PasswordHasher(cost=4, threads=1, queue_size=0, clock=clock, cores=1)
    hasher.admission.record_check(1.0)
    hasher.admit_login()
    hasher.admit_login()  # the burst of 2: no slot for the next second
    return hasher


def context(hasher: PasswordHasher, *, limiter: Any = None) -> service.AccountsContext:
    return service.AccountsContext(
        database=Untouchable("database"),  # type: ignore[arg-type]
        cache=Untouchable("cache"),  # type: ignore[arg-type]
        hasher=hasher,
        limiter=limiter or Untouchable("rate limiter"),
        settings=get_settings(),
    )


async def test_a_shed_login_answers_503_with_retry_after_before_any_io() -> None:
    hasher = exhausted_hasher()
    try:
        with pytest.raises(LoginShed) as shed:
            await service.login(context(hasher), Credentials(email="a@example.com", password="pw"), client_ip="1.2.3.4")
    finally:
        hasher.close()
    assert shed.value.status == 503 and shed.value.retry_after_s == 1


async def test_a_full_executor_sheds_a_login_before_any_io() -> None:
    hasher = PasswordHasher(cost=12, threads=1, queue_size=0)
    hashed = (await asyncio.to_thread(bcrypt.hashpw, b"pw", bcrypt.gensalt(4))).decode()
    try:
        running = asyncio.create_task(hasher.check("pw", hashed))
        await asyncio.sleep(0)  # the only slot is taken
        with pytest.raises(LoginShed):
            await service.login(context(hasher), Credentials(email="a@example.com", password="pw"), client_ip="1.2.3.4")
        assert await running
    finally:
        hasher.close()


class RefusingLimiter:
    async def hit(self, key: str, *, limit: int, window_s: int) -> None:
        raise TooManyRequests("too many attempts; retry later", retry_after_s=60)


async def test_a_rate_limited_login_returns_its_admission_slot() -> None:
    hasher = exhausted_hasher()
    hasher.refund_login()  # the slot is free again
    ctx = context(hasher, limiter=RefusingLimiter())
    try:
        for _ in range(5):  # an abuser hammering: 429 each time, never 503 and never a slot used up
            with pytest.raises(TooManyRequests):
                await service.login(ctx, Credentials(email="a@example.com", password="pw"), client_ip="1.2.3.4")
        hasher.admit_login()  # an honest login still gets the slot
    finally:
        hasher.close()


async def test_over_http_a_shed_login_is_503_problem_json_with_retry_after(app_host: HostThread, api: Api) -> None:
    user = await api.register()

    async def exhaust() -> None:
        admission = (await resources.get_password_hasher()).admission
        admission.record_check(1000.0)  # a check "costs" 1000 CPU seconds: the next slot is minutes away
        for _ in range(admission.parallelism):
            admission.admit()

    app_host.call(exhaust())
    reply = await api.login(user["email"], user["password"])
    assert reply.status == 503
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert reply.body["code"] == "login_overloaded"
    assert int(reply.headers["Retry-After"]) >= 60


async def test_a_hash_that_waited_past_max_wait_is_shed_not_started() -> None:
    now = [0.0]
    hasher = PasswordHasher(cost=4, threads=1, queue_size=1, max_wait_s=2.0, clock=lambda: now[0])
    hashed = await hasher.hash("pw")
    started, release = threading.Event(), threading.Event()
    checked: list[bytes] = []
    real = bcrypt.checkpw

    def held_check(password: bytes, hashed: bytes) -> bool:
        checked.append(password)
        started.set()
        release.wait(timeout=10)
        return real(password, hashed)

    bcrypt.checkpw = held_check  # type: ignore[assignment]
    try:
        first = asyncio.create_task(hasher.check("first", hashed))
        assert await asyncio.to_thread(started.wait, 10)  # the only thread is busy with the first check
        second = asyncio.create_task(hasher.check("second", hashed))
        await asyncio.sleep(0.05)  # queued behind it
        now[0] += 2.5  # the machine stalled: the queued check is now older than max_wait
        release.set()
        assert not await first
        with pytest.raises(LoginShed) as shed:
            await second
    finally:
        bcrypt.checkpw = real
        hasher.close()
    assert checked == [b"first"]  # the stale one never reached bcrypt
    assert shed.value.status == 503 and shed.value.retry_after_s >= 1
    assert hasher.shed == 1
