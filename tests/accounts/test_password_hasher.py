"""The bcrypt executor: off the loop, bounded, shedding with 503 + Retry-After, no timing oracle."""

from __future__ import annotations

import asyncio
import threading
import time

import bcrypt
import pytest

from shared.auth.passwords import LoginShed, PasswordHasher


async def test_hashes_verify_and_run_off_the_event_loop() -> None:
    hasher = PasswordHasher(cost=4, threads=1, queue_size=0)
    loop_thread = threading.get_ident()
    seen: list[int] = []
    real = bcrypt.checkpw

    def spy(password: bytes, hashed: bytes) -> bool:
        seen.append(threading.get_ident())
        return real(password, hashed)

    hashed = await hasher.hash("secret pw")
    assert hashed.startswith("$2b$04$")
    bcrypt.checkpw = spy  # type: ignore[assignment]
    try:
        assert await hasher.check("secret pw", hashed)
        assert not await hasher.check("other pw", hashed)
    finally:
        bcrypt.checkpw = real
        hasher.close()
    assert seen and loop_thread not in seen


async def test_an_unknown_account_costs_one_bcrypt_check_of_the_same_cost() -> None:
    hasher = PasswordHasher(cost=4, threads=1, queue_size=0)
    calls: list[bytes] = []
    real = bcrypt.checkpw

    def spy(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        return real(password, hashed)

    hashed = await hasher.hash("secret pw")
    bcrypt.checkpw = spy  # type: ignore[assignment]
    try:
        assert not await hasher.check("secret pw", None)
        assert not await hasher.check("wrong pw", hashed)
    finally:
        bcrypt.checkpw = real
        hasher.close()
    assert len(calls) == 2
    assert calls[0][:7] == calls[1][:7] == b"$2b$04$"  # same algorithm and cost for both


async def test_a_full_queue_sheds_at_once_with_retry_after() -> None:
    hasher = PasswordHasher(cost=12, threads=1, queue_size=1)
    hashed = (await asyncio.to_thread(bcrypt.hashpw, b"pw", bcrypt.gensalt(4))).decode()
    try:
        running = [asyncio.create_task(hasher.check("pw", hashed)) for _ in range(2)]
        await asyncio.sleep(0.05)  # both admitted: one runs, one waits
        started = time.perf_counter()
        with pytest.raises(LoginShed) as shed:
            await hasher.check("pw", hashed)
        assert time.perf_counter() - started < 0.05
        assert shed.value.status == 503 and shed.value.retry_after_s >= 1
        assert await asyncio.gather(*running) == [True, True]
    finally:
        hasher.close()


async def test_a_hash_that_would_wait_past_half_the_max_wait_is_shed_at_once() -> None:
    hasher = PasswordHasher(cost=12, threads=1, queue_size=8, max_wait_s=1.0)
    hashed = (await asyncio.to_thread(bcrypt.hashpw, b"pw", bcrypt.gensalt(4))).decode()
    try:
        hasher.record_job_time(0.3)  # lately each job took 0.3 s on its thread
        running = [asyncio.create_task(hasher.check("pw", hashed)) for _ in range(2)]
        await asyncio.sleep(0.05)  # one runs, one waits about 0.3 s: a third would wait 0.6 s > 0.5 s
        with pytest.raises(LoginShed) as shed:  # decided from memory: admit_login never waits
            hasher.admit_login()
        assert shed.value.status == 503 and shed.value.retry_after_s >= 1
        assert await asyncio.gather(*running) == [True, True]
        hasher.admit_login()  # the queue drained: admitted again
    finally:
        hasher.close()


async def test_logins_are_admitted_up_to_the_share_of_measured_capacity() -> None:
    now = [0.0]
    hasher = PasswordHasher(cost=4, threads=2, queue_size=4, login_share=0.5, clock=lambda: now[0], cores=2)
    hasher.admit_login()  # nothing measured yet: admitted
    hasher.admission.record_check(0.25)  # checks take 250 ms of CPU: capacity 8/s, admitted 4/s
    assert hasher.login_rate_limit == 4.0
    hasher.admit_login()
    hasher.admit_login()  # the burst of `threads`
    with pytest.raises(LoginShed) as shed:
        hasher.admit_login()
    assert shed.value.retry_after_s == 1
    now[0] += 0.25  # one more slot refilled at 4/s
    hasher.admit_login()
    with pytest.raises(LoginShed):
        hasher.admit_login()
    assert hasher.shed == 2
    hasher.close()


def test_rehash_is_needed_when_the_cost_changes() -> None:
    hasher = PasswordHasher(cost=12, threads=1, queue_size=0)
    assert not hasher.needs_rehash("$2b$12$" + "x" * 53)
    assert hasher.needs_rehash("$2b$10$" + "x" * 53)
    hasher.close()


async def test_an_upgrade_is_skipped_rather_than_shed_when_the_executor_is_full() -> None:
    hasher = PasswordHasher(cost=5, threads=1, queue_size=0)
    old = (await asyncio.to_thread(bcrypt.hashpw, b"pw", bcrypt.gensalt(4))).decode()
    try:
        upgraded = await hasher.upgraded_hash("pw", old)
        assert upgraded is not None and upgraded.startswith("$2b$05$") and bcrypt.checkpw(b"pw", upgraded.encode())
        assert await hasher.upgraded_hash("pw", upgraded) is None
        busy = asyncio.create_task(hasher.hash("other"))
        await asyncio.sleep(0)  # the only slot is taken
        assert await hasher.upgraded_hash("pw", old) is None
        await busy
    finally:
        hasher.close()


def test_a_hash_below_the_configured_cost_is_padded_to_its_work() -> None:
    from shared.auth.passwords import padding_costs

    assert padding_costs("$2b$06$" + "x" * 53, 10) == [6, 7, 8, 9]
    assert 2**6 + sum(2**cost for cost in padding_costs("$2b$06$" + "x" * 53, 10)) == 2**10
    assert padding_costs("$2b$10$" + "x" * 53, 10) == []  # at the cost: nothing to pad
    assert padding_costs("$2b$11$" + "x" * 53, 10) == []  # stronger (kept after a cost decrease): documented
    assert padding_costs(None, 10) == []  # the decoy is already at the cost


async def test_every_check_does_at_least_the_work_of_one_at_the_configured_cost() -> None:
    hasher = PasswordHasher(cost=6, threads=1, queue_size=0)
    legacy = (await asyncio.to_thread(bcrypt.hashpw, b"secret pw", bcrypt.gensalt(4))).decode()
    current = (await asyncio.to_thread(bcrypt.hashpw, b"secret pw", bcrypt.gensalt(6))).decode()
    costs: list[int] = []
    real = bcrypt.checkpw

    def spy(password: bytes, hashed: bytes) -> bool:
        costs.append(int(hashed.split(b"$")[2]))
        return real(password, hashed)

    bcrypt.checkpw = spy  # type: ignore[assignment]
    try:
        runs = {}
        for name, password, stored in [
            ("legacy right", "secret pw", legacy),
            ("legacy wrong", "wrong pw", legacy),
            ("current wrong", "wrong pw", current),
            ("unknown", "wrong pw", None),
        ]:
            costs.clear()
            runs[name] = (await hasher.check(password, stored), list(costs))
    finally:
        bcrypt.checkpw = real
        hasher.close()
    assert runs == {
        "legacy right": (True, [4, 4, 5]),  # 2^4 + 2^4 + 2^5 = 2^6
        "legacy wrong": (False, [4, 4, 5]),
        "current wrong": (False, [6]),
        "unknown": (False, [6]),
    }
