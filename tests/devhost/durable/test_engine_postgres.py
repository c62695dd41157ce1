"""The engine over PostgresStore: restarts, two processes sharing one hub, redelivery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from types import ModuleType
from uuid import uuid4

import pytest

from devhost.clock import VirtualClock
from devhost.durable.engine import Chaos, DurableEngine
from devhost.durable.functions import DirectRunner
from devhost.durable.harness import specs_of
from devhost.durable.postgres_store import PostgresStore
from devhost.durable.store import MemoryStore


@pytest.fixture
def hub() -> str:
    return f"hub{uuid4().hex[:10]}"


@pytest.fixture
async def runner(sample: ModuleType) -> AsyncIterator[DirectRunner]:
    yield DirectRunner(specs_of(sample.build_app()))


def new_engine(database_url: str, hub: str, runner: DirectRunner, clock: VirtualClock, **kw: object) -> DurableEngine:
    return DurableEngine(PostgresStore(database_url, hub), runner, clock=clock, poll_interval=0.02, **kw)  # type: ignore[arg-type]


async def settle(store: PostgresStore | MemoryStore, clock: VirtualClock, seconds: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline, quiet = loop.time() + seconds, 0
    while quiet < 3:
        quiet = 0 if await store.has_work(clock.now()) else quiet + 1
        assert loop.time() < deadline, "engine did not settle"
        await asyncio.sleep(0.02)


async def test_waits_fifteen_virtual_minutes_survives_a_restart_and_completes_on_the_event(
    database_url: str, hub: str, runner: DirectRunner, sample: ModuleType
) -> None:
    clock = VirtualClock()
    first = new_engine(database_url, hub, runner, clock)
    await first.start()
    instance_id = await first.start_new("approval", None, '"{\\"id\\": 5}"')
    await settle(first.store, clock)  # type: ignore[arg-type]
    clock.advance(timedelta(minutes=7))
    await settle(first.store, clock)  # type: ignore[arg-type]
    await first.stop(graceful=False)

    second = new_engine(database_url, hub, runner, clock)
    await second.start()
    try:
        status = await second.status(instance_id)
        assert status is not None and status["runtimeStatus"] == "Running"
        clock.advance(timedelta(minutes=7))
        await settle(second.store, clock)  # type: ignore[arg-type]
        await second.raise_event(instance_id, "Approved", '"{\\"ref\\": \\"pay_9\\"}"')
        record = await second.wait_for(instance_id)
        assert record.status == "Completed"
        status = await second.status(instance_id)
        assert status is not None and status["output"] == {"receipt": "r-5", "event_type": "str"}
        history = await second.store.get_history(instance_id)
        types = [e["EventType"] for e in history]
        assert types.count(10) == 1 and types.count(15) == 1 and types.count(1) == 1
        # The cancelled 15-minute timer fires later into a finished instance and is dropped.
        clock.advance(timedelta(minutes=2))
        await settle(second.store, clock)  # type: ignore[arg-type]
        assert [e["EventType"] for e in await second.store.get_history(instance_id)] == types
    finally:
        await second.stop()


async def test_two_engines_share_one_hub_without_running_an_episode_twice(
    database_url: str, hub: str, runner: DirectRunner, sample: ModuleType
) -> None:
    clock = VirtualClock()
    engines = [new_engine(database_url, hub, runner, clock, orchestration_workers=3) for _ in range(2)]
    for engine in engines:
        await engine.start()
    try:
        ids = [await engines[i % 2].start_new("parent", None, f'"{i}"') for i in range(12)]
        for instance_id in ids:
            await engines[0].wait_for(instance_id, seconds=30)
        for i, instance_id in enumerate(ids):
            status = await engines[1].status(instance_id)
            assert status is not None and status["output"]["child"] == 2 * i
            history = await engines[0].store.get_history(instance_id)
            # One episode per message batch: every episode opens once and closes once, ids never repeat.
            types = [e["EventType"] for e in history]
            assert types.count(12) == types.count(13)
            assert [e["EventId"] for e in history if e["EventType"] == 7] == [0]
        assert sorted(x for name, x in sample.CALLS if name == "double") == list(range(12))
    finally:
        for engine in engines:
            await engine.stop()


async def test_activity_lost_with_its_process_is_redelivered_after_the_lease(
    database_url: str, hub: str, runner: DirectRunner, sample: ModuleType
) -> None:
    clock = VirtualClock()
    chaos = Chaos(crash_activity=lambda _name, attempt: attempt == 1)
    engine = new_engine(database_url, hub, runner, clock, chaos=chaos, activity_lease=timedelta(milliseconds=300))
    await engine.start()
    try:
        instance_id = await engine.start_new("child", None, '"6"')
        record = await engine.wait_for(instance_id)
        assert record.output == "12"
        assert sample.CALLS == [("double", 6), ("double", 6)]
    finally:
        await engine.stop()
