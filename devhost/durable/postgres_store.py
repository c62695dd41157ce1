"""`PostgresStore`: durable state in PostgreSQL, schema `durable_local` (devhost's own, created here).

- An episode runs in one transaction: the instance is locked with `pg_advisory_xact_lock`-style
  `pg_try_advisory_xact_lock(hashtext(hub || instance))`, its due messages are taken with
  `FOR UPDATE SKIP LOCKED`, and history, instance row, consumed messages and all outgoing work are
  written before COMMIT. A process that dies mid-episode rolls back; the messages are redelivered.
- Activities are leased (`locked_by`, `lock_expiration`, `dequeue_count`) and claimed with
  `FOR UPDATE SKIP LOCKED`, so several devhost processes can share one task hub.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from devhost.durable.protocol import Event, ParentInstance
from devhost.durable.store import (
    CONTROL_EVENTS,
    ActivityWork,
    EpisodeCommit,
    EpisodeWork,
    InstanceExistsError,
    InstanceQuery,
    InstanceRecord,
    Message,
)

Conn = asyncpg.Connection | PoolConnectionProxy

_DDL = """
CREATE SCHEMA IF NOT EXISTS durable_local;
CREATE TABLE IF NOT EXISTS durable_local.instances (
    hub text NOT NULL,
    instance_id text NOT NULL,
    execution_id text NOT NULL,
    name text NOT NULL,
    version text NOT NULL DEFAULT '',
    status text NOT NULL,
    input text,
    output text,
    custom_status text,
    parent json,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (hub, instance_id)
);
CREATE TABLE IF NOT EXISTS durable_local.history (
    hub text NOT NULL,
    instance_id text NOT NULL,
    execution_id text NOT NULL,
    seq int NOT NULL,
    event json NOT NULL,
    PRIMARY KEY (hub, instance_id, execution_id, seq)
);
CREATE TABLE IF NOT EXISTS durable_local.new_events (
    id bigserial PRIMARY KEY,
    hub text NOT NULL,
    instance_id text NOT NULL,
    execution_id text,
    event_type int NOT NULL,
    event json NOT NULL,
    visible_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS new_events_by_instance ON durable_local.new_events (hub, instance_id, id);
CREATE INDEX IF NOT EXISTS new_events_by_due ON durable_local.new_events (hub, visible_at);
CREATE TABLE IF NOT EXISTS durable_local.new_tasks (
    id bigserial PRIMARY KEY,
    hub text NOT NULL,
    instance_id text NOT NULL,
    execution_id text NOT NULL,
    task_id int NOT NULL,
    name text NOT NULL,
    input text,
    locked_by text,
    lock_expiration timestamptz,
    dequeue_count int NOT NULL DEFAULT 0
);
"""

_DELIVERABLE = """
    e.hub = $1 AND e.visible_at <= $2
    AND NOT EXISTS (
        SELECT 1 FROM durable_local.instances i
        WHERE i.hub = e.hub AND i.instance_id = e.instance_id AND i.status = 'Suspended'
          AND NOT (e.event_type = ANY($3::int[])))
"""


class PostgresStore:
    """The shared, restart-safe store (asyncpg pool)."""

    def __init__(self, dsn: str, hub: str = "TestHubName", *, pool_size: int = 5) -> None:
        self.dsn = dsn
        self.hub = hub
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("PostgresStore.open() was not awaited")
        return self._pool

    async def open(self) -> None:
        if self._pool is not None:
            return
        self._pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=self._pool_size)
        async with self.pool.acquire() as conn, conn.transaction():
            # Concurrent CREATE ... IF NOT EXISTS can still collide; serialize devhost processes.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('durable_local.ddl'))")
            await conn.execute(_DDL)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    # --- instances ---------------------------------------------------------------------------------

    async def create_instance(self, record: InstanceRecord, start: Message, *, dedupe_statuses: frozenset[str]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await self._lock_instance(conn, record.instance_id)
            status = await conn.fetchval(
                "SELECT status FROM durable_local.instances WHERE hub = $1 AND instance_id = $2",
                self.hub,
                record.instance_id,
            )
            if status is not None and status in dedupe_statuses:
                raise InstanceExistsError(record.instance_id, status)
            if status is not None:
                await self._delete(conn, [record.instance_id])
            await self._insert_instance(conn, record)
            await self._send(conn, start)

    async def get_instance(self, instance_id: str) -> InstanceRecord | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM durable_local.instances WHERE hub = $1 AND instance_id = $2", self.hub, instance_id
        )
        return None if row is None else _record(row)

    async def get_history(self, instance_id: str) -> list[Event]:
        async with self.pool.acquire() as conn:
            return await self._history(conn, instance_id)

    async def _history(self, conn: Conn, instance_id: str) -> list[Event]:
        rows = await conn.fetch(
            """SELECT h.event FROM durable_local.history h JOIN durable_local.instances i
               ON i.hub = h.hub AND i.instance_id = h.instance_id AND i.execution_id = h.execution_id
               WHERE h.hub = $1 AND h.instance_id = $2 ORDER BY h.seq""",
            self.hub,
            instance_id,
        )
        return [json.loads(row["event"]) for row in rows]

    async def query(self, query: InstanceQuery) -> list[InstanceRecord]:
        rows = await self.pool.fetch(
            """SELECT * FROM durable_local.instances WHERE hub = $1
               AND ($2::timestamptz IS NULL OR created_at >= $2) AND ($3::timestamptz IS NULL OR created_at <= $3)
               AND ($4::text[] IS NULL OR status = ANY($4)) AND ($5::text IS NULL OR starts_with(instance_id, $5))
               ORDER BY created_at, instance_id""",
            self.hub,
            query.created_from,
            query.created_to,
            sorted(query.statuses) if query.statuses is not None else None,
            query.prefix,
        )
        return [_record(row) for row in rows]

    async def send(self, message: Message) -> None:
        async with self.pool.acquire() as conn:
            await self._send(conn, message)

    async def purge(self, instance_ids: list[str]) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            return await self._delete(conn, instance_ids)

    # --- episodes ----------------------------------------------------------------------------------

    @asynccontextmanager
    async def claim_episode(self, now: datetime) -> AsyncIterator[EpisodeWork | None]:
        async with self.pool.acquire() as conn, conn.transaction():
            candidates = await conn.fetch(
                f"""SELECT e.instance_id, min(e.id) AS first FROM durable_local.new_events e
                    WHERE {_DELIVERABLE} GROUP BY e.instance_id ORDER BY first LIMIT 20""",  # noqa: S608
                self.hub,
                now,
                sorted(CONTROL_EVENTS),
            )
            for candidate in candidates:
                instance_id = candidate["instance_id"]
                if not await conn.fetchval(
                    "SELECT pg_try_advisory_xact_lock(hashtext($1))", f"{self.hub}\x1f{instance_id}"
                ):
                    continue
                rows = await conn.fetch(
                    f"""SELECT e.* FROM durable_local.new_events e WHERE {_DELIVERABLE} AND e.instance_id = $4
                        ORDER BY e.id FOR UPDATE SKIP LOCKED""",  # noqa: S608
                    self.hub,
                    now,
                    sorted(CONTROL_EVENTS),
                    instance_id,
                )
                if not rows:
                    continue
                messages = [_message(row) for row in rows]
                row = await conn.fetchrow(
                    "SELECT * FROM durable_local.instances WHERE hub = $1 AND instance_id = $2 FOR UPDATE",
                    self.hub,
                    instance_id,
                )
                record = None if row is None else _record(row)
                history = await self._history(conn, instance_id)

                async def commit(change: EpisodeCommit, conn: Conn = conn) -> None:
                    await self._commit(conn, change)

                yield EpisodeWork(record, history, messages, commit)
                return
            yield None

    async def _commit(self, conn: Conn, commit: EpisodeCommit) -> None:
        record = commit.instance
        await conn.execute("DELETE FROM durable_local.new_events WHERE id = ANY($1::bigint[])", commit.consumed)
        updated = await conn.execute(
            """UPDATE durable_local.instances SET execution_id = $3, status = $4, input = $5, output = $6,
               custom_status = $7, updated_at = $8 WHERE hub = $1 AND instance_id = $2""",
            self.hub,
            record.instance_id,
            record.execution_id,
            record.status,
            record.input,
            record.output,
            record.custom_status,
            record.updated_at,
        )
        if updated != "UPDATE 0" and commit.history:
            execution = commit.history_execution or record.execution_id
            start = await conn.fetchval(
                """SELECT coalesce(max(seq) + 1, 0) FROM durable_local.history
                   WHERE hub = $1 AND instance_id = $2 AND execution_id = $3""",
                self.hub,
                record.instance_id,
                execution,
            )
            await conn.executemany(
                """INSERT INTO durable_local.history (hub, instance_id, execution_id, seq, event)
                   VALUES ($1, $2, $3, $4, $5)""",
                [
                    (self.hub, record.instance_id, execution, start + i, json.dumps(e))
                    for i, e in enumerate(commit.history)
                ],
            )
        await conn.executemany(
            """INSERT INTO durable_local.new_tasks (hub, instance_id, execution_id, task_id, name, input)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            [(self.hub, w.instance_id, w.execution_id, w.task_id, w.name, w.input) for w in commit.activities],
        )
        for message in commit.messages:
            await self._send(conn, message)
        for child, start_message in commit.new_instances:
            await self._delete(conn, [child.instance_id])
            await self._insert_instance(conn, child)
            await self._send(conn, start_message)

    async def next_due(self) -> datetime | None:
        due: datetime | None = await self.pool.fetchval(
            "SELECT min(visible_at) FROM durable_local.new_events WHERE hub = $1", self.hub
        )
        return due

    async def has_work(self, now: datetime) -> bool:
        found: bool = await self.pool.fetchval(
            f"""SELECT EXISTS (SELECT 1 FROM durable_local.new_events e WHERE {_DELIVERABLE})
                OR EXISTS (SELECT 1 FROM durable_local.new_tasks WHERE hub = $1)""",  # noqa: S608
            self.hub,
            now,
            sorted(CONTROL_EVENTS),
        )
        return found

    # --- activities --------------------------------------------------------------------------------

    async def claim_activity(self, worker: str, now: datetime, lease_until: datetime) -> ActivityWork | None:
        row = await self.pool.fetchrow(
            """UPDATE durable_local.new_tasks SET locked_by = $2, lock_expiration = $3,
                      dequeue_count = dequeue_count + 1
               WHERE id = (SELECT id FROM durable_local.new_tasks
                           WHERE hub = $1 AND (lock_expiration IS NULL OR lock_expiration < $4)
                           ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
               RETURNING *""",
            self.hub,
            worker,
            lease_until,
            now,
        )
        if row is None:
            return None
        return ActivityWork(
            row["instance_id"],
            row["execution_id"],
            row["task_id"],
            row["name"],
            row["input"],
            id=row["id"],
            dequeue_count=row["dequeue_count"],
        )

    async def complete_activity(self, work: ActivityWork, worker: str, result: Message) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            deleted = await conn.fetchval(
                "DELETE FROM durable_local.new_tasks WHERE id = $1 AND locked_by = $2 RETURNING id", work.id, worker
            )
            if deleted is None:
                return False
            await self._send(conn, result)
            return True

    async def release_activity(self, work: ActivityWork, worker: str) -> None:
        await self.pool.execute(
            """UPDATE durable_local.new_tasks SET locked_by = NULL, lock_expiration = NULL
               WHERE id = $1 AND locked_by = $2""",
            work.id,
            worker,
        )

    # --- helpers -----------------------------------------------------------------------------------

    async def _lock_instance(self, conn: Conn, instance_id: str) -> None:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"{self.hub}\x1f{instance_id}")

    async def _insert_instance(self, conn: Conn, record: InstanceRecord) -> None:
        await conn.execute(
            """INSERT INTO durable_local.instances (hub, instance_id, execution_id, name, version, status, input,
                   output, custom_status, parent, created_at, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)""",
            self.hub,
            record.instance_id,
            record.execution_id,
            record.name,
            record.version,
            record.status,
            record.input,
            record.output,
            record.custom_status,
            json.dumps(record.parent.to_json()) if record.parent else None,
            record.created_at,
            record.updated_at,
        )

    async def _send(self, conn: Conn, message: Message) -> None:
        await conn.execute(
            """INSERT INTO durable_local.new_events (hub, instance_id, execution_id, event_type, event, visible_at)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            self.hub,
            message.instance_id,
            message.execution_id,
            int(message.event["EventType"]),
            json.dumps(message.event),
            message.visible_at,
        )

    async def _delete(self, conn: Conn, instance_ids: list[str]) -> int:
        for table in ("history", "new_events", "new_tasks"):
            await conn.execute(
                f"DELETE FROM durable_local.{table} WHERE hub = $1 AND instance_id = ANY($2::text[])",  # noqa: S608
                self.hub,
                instance_ids,
            )
        result: str = await conn.execute(
            "DELETE FROM durable_local.instances WHERE hub = $1 AND instance_id = ANY($2::text[])",
            self.hub,
            instance_ids,
        )
        return int(result.split()[-1])


def _record(row: Any) -> InstanceRecord:
    parent = json.loads(row["parent"]) if row["parent"] else None
    return InstanceRecord(
        instance_id=row["instance_id"],
        name=row["name"],
        execution_id=row["execution_id"],
        status=row["status"],
        input=row["input"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        output=row["output"],
        custom_status=row["custom_status"],
        parent=ParentInstance.from_json(parent),
        version=row["version"],
    )


def _message(row: Any) -> Message:
    return Message(row["instance_id"], json.loads(row["event"]), row["visible_at"], row["execution_id"], row["id"])
