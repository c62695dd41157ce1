"""Durable state: the `Store` protocol the engine uses, its records, and the in-memory store.

The shape follows durabletask-mssql: instances, the history of each execution, pending messages
for instances (`new_events`, with `visible_at` for timers) and pending activity work (`new_tasks`,
leased). An episode reads an instance with its due messages and writes everything it decided in
one commit.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from devhost.durable.protocol import Event, EventType, ParentInstance, RuntimeStatus

# Messages a suspended instance still accepts.
CONTROL_EVENTS = frozenset({int(EventType.EXECUTION_TERMINATED), int(EventType.EXECUTION_RESUMED)})


class InstanceExistsError(Exception):
    """An instance with that id exists in a status that refuses a new start (the extension answers 409)."""

    def __init__(self, instance_id: str, status: str) -> None:
        super().__init__(f"An Orchestration instance with the status {status} already exists.")
        self.instance_id = instance_id
        self.status = status


@dataclass
class InstanceRecord:
    """One orchestration instance (its current execution)."""

    instance_id: str
    name: str
    execution_id: str
    status: str
    input: str | None
    created_at: datetime
    updated_at: datetime
    output: str | None = None
    custom_status: str | None = None
    parent: ParentInstance | None = None
    version: str = ""


@dataclass(frozen=True)
class Message:
    """An event waiting to be delivered to an instance; `execution_id` None means any execution."""

    instance_id: str
    event: Event
    visible_at: datetime
    execution_id: str | None = None
    id: int = 0


@dataclass(frozen=True)
class ActivityWork:
    """An activity to run for `instance_id`'s execution `execution_id`."""

    instance_id: str
    execution_id: str
    task_id: int
    name: str
    input: str | None
    id: int = 0
    dequeue_count: int = 0


@dataclass
class EpisodeCommit:
    """Everything one episode changes, applied atomically."""

    instance: InstanceRecord
    history: list[Event]
    consumed: list[int]
    # The execution `history` belongs to when the episode switched executions (continue-as-new).
    history_execution: str | None = None
    activities: list[ActivityWork] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    new_instances: list[tuple[InstanceRecord, Message]] = field(default_factory=list)


@dataclass
class EpisodeWork:
    """A claimed instance: its record, current history and due messages, and how to commit."""

    instance: InstanceRecord | None
    history: list[Event]
    messages: list[Message]
    commit: Callable[[EpisodeCommit], Awaitable[None]]


@dataclass(frozen=True)
class InstanceQuery:
    """Filters of the status query / purge-by APIs."""

    created_from: datetime | None = None
    created_to: datetime | None = None
    statuses: frozenset[str] | None = None
    prefix: str | None = None

    def matches(self, record: InstanceRecord) -> bool:
        return (
            (self.created_from is None or record.created_at >= self.created_from)
            and (self.created_to is None or record.created_at <= self.created_to)
            and (self.statuses is None or record.status in self.statuses)
            and (self.prefix is None or record.instance_id.startswith(self.prefix))
        )


class Store(Protocol):
    """What the engine needs from durable storage; one task hub per store object."""

    hub: str

    async def open(self) -> None:
        """Prepare the store (create tables)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...

    async def create_instance(self, record: InstanceRecord, start: Message, *, dedupe_statuses: frozenset[str]) -> None:
        """Create the instance and queue its ExecutionStarted. An existing one is replaced (history, queued
        messages and activities dropped) unless its status is in `dedupe_statuses`: InstanceExistsError."""
        ...

    async def get_instance(self, instance_id: str) -> InstanceRecord | None:
        """The instance, or None."""
        ...

    async def get_history(self, instance_id: str) -> list[Event]:
        """The history of the instance's current execution."""
        ...

    async def query(self, query: InstanceQuery) -> list[InstanceRecord]:
        """Instances matching `query`, oldest first."""
        ...

    async def send(self, message: Message) -> None:
        """Queue a message for an instance."""
        ...

    async def purge(self, instance_ids: list[str]) -> int:
        """Delete these instances with their history and messages; return how many existed."""
        ...

    def claim_episode(self, now: datetime) -> AbstractAsyncContextManager[EpisodeWork | None]:
        """Lock one instance with due messages (yields None when idle) for an episode."""
        ...

    async def next_due(self) -> datetime | None:
        """The earliest `visible_at` of any queued message."""
        ...

    async def has_work(self, now: datetime) -> bool:
        """Whether any message is due or any activity is queued or leased."""
        ...

    async def claim_activity(self, worker: str, now: datetime, lease_until: datetime) -> ActivityWork | None:
        """Lease the oldest activity that is free or whose lease expired (times are wall-clock)."""
        ...

    async def complete_activity(self, work: ActivityWork, worker: str, result: Message) -> bool:
        """Delete the leased activity and queue its result; False when the lease was lost."""
        ...

    async def release_activity(self, work: ActivityWork, worker: str) -> None:
        """Give a leased activity back at once (graceful shutdown)."""
        ...


class MemoryStore:
    """An in-process store for unit tests and the DurableHarness (single process, asyncio-atomic)."""

    def __init__(self, hub: str = "TestHubName") -> None:
        self.hub = hub
        self._instances: dict[str, InstanceRecord] = {}
        self._history: dict[tuple[str, str], list[Event]] = {}
        self._messages: dict[int, Message] = {}
        self._tasks: dict[int, tuple[ActivityWork, str | None, datetime | None]] = {}
        self._ids = itertools.count(1)
        self._locked: set[str] = set()

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def create_instance(self, record: InstanceRecord, start: Message, *, dedupe_statuses: frozenset[str]) -> None:
        existing = self._instances.get(record.instance_id)
        if existing is not None and existing.status in dedupe_statuses:
            raise InstanceExistsError(record.instance_id, existing.status)
        if existing is not None:
            self._drop_instance(record.instance_id)
        self._instances[record.instance_id] = copy.deepcopy(record)
        await self.send(start)

    async def get_instance(self, instance_id: str) -> InstanceRecord | None:
        record = self._instances.get(instance_id)
        return copy.deepcopy(record)

    async def get_history(self, instance_id: str) -> list[Event]:
        record = self._instances.get(instance_id)
        if record is None:
            return []
        return copy.deepcopy(self._history.get((instance_id, record.execution_id), []))

    async def query(self, query: InstanceQuery) -> list[InstanceRecord]:
        found = [copy.deepcopy(r) for r in self._instances.values() if query.matches(r)]
        return sorted(found, key=lambda r: r.created_at)

    async def send(self, message: Message) -> None:
        message_id = next(self._ids)
        self._messages[message_id] = replace(message, id=message_id, event=copy.deepcopy(message.event))

    async def purge(self, instance_ids: list[str]) -> int:
        count = 0
        for instance_id in instance_ids:
            if instance_id in self._instances:
                self._drop_instance(instance_id)
                count += 1
        return count

    def _drop_instance(self, instance_id: str) -> None:
        self._instances.pop(instance_id, None)
        for key in [k for k in self._history if k[0] == instance_id]:
            del self._history[key]
        for message_id in [i for i, m in self._messages.items() if m.instance_id == instance_id]:
            del self._messages[message_id]
        for task_id in [i for i, t in self._tasks.items() if t[0].instance_id == instance_id]:
            del self._tasks[task_id]

    def _deliverable(self, message: Message, now: datetime) -> bool:
        if message.visible_at > now:
            return False
        record = self._instances.get(message.instance_id)
        suspended = record is not None and record.status == RuntimeStatus.SUSPENDED
        return not suspended or int(message.event["EventType"]) in CONTROL_EVENTS

    @asynccontextmanager
    async def claim_episode(self, now: datetime) -> AsyncIterator[EpisodeWork | None]:
        chosen: str | None = None
        for message in sorted(self._messages.values(), key=lambda m: m.id):
            if message.instance_id not in self._locked and self._deliverable(message, now):
                chosen = message.instance_id
                break
        if chosen is None:
            yield None
            return
        instance_id = chosen
        self._locked.add(instance_id)
        try:
            messages = [
                copy.deepcopy(m)
                for m in sorted(self._messages.values(), key=lambda m: m.id)
                if m.instance_id == instance_id and self._deliverable(m, now)
            ]
            record = await self.get_instance(instance_id)
            history = await self.get_history(instance_id)
            yield EpisodeWork(record, history, messages, self._commit)
        finally:
            self._locked.discard(instance_id)

    async def _commit(self, commit: EpisodeCommit) -> None:
        record = copy.deepcopy(commit.instance)
        stored = self._instances.get(record.instance_id)
        if stored is not None and stored.execution_id != (commit.history_execution or record.execution_id):
            # A start replaced the execution while this episode ran (no instance lock here, unlike
            # PostgresStore): what it decided belongs to an execution that no longer exists.
            return
        for message_id in commit.consumed:
            self._messages.pop(message_id, None)
        if record.instance_id in self._instances:
            key = (record.instance_id, commit.history_execution or record.execution_id)
            self._history[key] = self._history.get(key, []) + copy.deepcopy(commit.history)
            self._instances[record.instance_id] = record
        for work in commit.activities:
            task_id = next(self._ids)
            self._tasks[task_id] = (replace(work, id=task_id), None, None)
        for message in commit.messages:
            await self.send(message)
        for child, start in commit.new_instances:
            if child.instance_id in self._instances:
                self._drop_instance(child.instance_id)
            self._instances[child.instance_id] = copy.deepcopy(child)
            await self.send(start)

    async def next_due(self) -> datetime | None:
        return min((m.visible_at for m in self._messages.values()), default=None)

    async def claim_activity(self, worker: str, now: datetime, lease_until: datetime) -> ActivityWork | None:
        for task_id in sorted(self._tasks):
            work, _, expiry = self._tasks[task_id]
            if expiry is None or expiry < now:
                leased = replace(work, dequeue_count=work.dequeue_count + 1)
                self._tasks[task_id] = (leased, worker, lease_until)
                return leased
        return None

    async def complete_activity(self, work: ActivityWork, worker: str, result: Message) -> bool:
        entry = self._tasks.get(work.id)
        if entry is None or entry[1] != worker:
            return False
        del self._tasks[work.id]
        await self.send(result)
        return True

    async def release_activity(self, work: ActivityWork, worker: str) -> None:
        entry = self._tasks.get(work.id)
        if entry is not None and entry[1] == worker:
            self._tasks[work.id] = (entry[0], None, None)

    async def has_work(self, now: datetime) -> bool:
        return bool(self._tasks) or any(self._deliverable(m, now) for m in self._messages.values())
