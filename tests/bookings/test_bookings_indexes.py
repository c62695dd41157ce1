"""EXPLAIN on 30,000 seeded bookings: bookings_status_idx exists as the original names it and serves
the status-wide query, the housekeeping sweep of stale holds; a participant's status-filtered list
page reads only the participant's range of an index on the participant instead."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from query_plans import index_conditions, plan, seeded_database

from shared.bookings.models import BookingQuery
from shared.bookings.repository import EXPIRE_STALE_HOLDS, list_query

# 200 mentors and 3,000 students with 10 bookings each: all completed but for one pending hold in
# every hundred, half of those past their hold.
SEED = """
INSERT INTO users (email, name, role, password_hash)
SELECT 'm' || g || '@example.com', 'Mentor ' || g, 'mentor', 'unused' FROM generate_series(1, 200) g;
INSERT INTO users (email, name, role, password_hash)
SELECT 's' || g || '@example.com', 'Student ' || g, 'student', 'unused' FROM generate_series(1, 3000) g;
INSERT INTO mentors (id, headline, timezone, hourly_rate_minor, currency)
SELECT id, 'Engineer', 'UTC', 100000, 'INR' FROM users WHERE role = 'mentor';
WITH m AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM mentors),
     s AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM users WHERE role = 'student'),
     b AS (SELECT s.id AS student_id, m.id AS mentor_id, s.n * 10 + k AS n,
                  timestamptz '2025-01-01' + (s.n * 10 + k) * interval '1 hour' AS start
           FROM s CROSS JOIN generate_series(0, 9) k JOIN m ON m.n = (s.n * 7 + k * 31) % 200)
INSERT INTO bookings (student_id, mentor_id, scheduled_at, ends_at, status, price_minor, currency, commission_bps,
                      policy, hold_expires_at)
SELECT student_id, mentor_id, start, start + interval '1 hour',
       CASE WHEN n % 100 = 0 THEN 'pending_payment' ELSE 'completed' END, 100000, 'INR', 1500, '{}',
       CASE WHEN n % 200 = 0 THEN timestamptz '2024-12-01' WHEN n % 100 = 0 THEN timestamptz '2030-01-01' END
FROM b;
ANALYZE users;
ANALYZE mentors;
ANALYZE bookings;
"""


@pytest.fixture(scope="module")
async def seeded(database_url: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    async with seeded_database(database_url, "bookings_plans", SEED) as conn:
        yield conn


async def test_bookings_status_idx_is_on_status_then_start(seeded: asyncpg.Connection[Any]) -> None:
    definition = await seeded.fetchval("SELECT indexdef FROM pg_indexes WHERE indexname = 'bookings_status_idx'")
    assert definition is not None and definition.endswith("USING btree (status, scheduled_at)"), definition


async def test_the_sweep_of_stale_holds_reads_bookings_status_idx(seeded: asyncpg.Connection[Any]) -> None:
    nodes = await plan(seeded, EXPIRE_STALE_HOLDS, datetime.now(UTC), 500)
    conditions = index_conditions(nodes, "bookings_status_idx")
    assert any("pending_payment" in c for c in conditions), nodes
    assert not any(n["Node Type"] == "Seq Scan" for n in nodes), nodes


async def test_a_status_filtered_list_page_reads_the_participants_index(seeded: asyncpg.Connection[Any]) -> None:
    student = await seeded.fetchval("SELECT student_id FROM bookings WHERE status = 'pending_payment' LIMIT 1")
    sql, params = list_query(student, "student", BookingQuery(status="pending_payment"), None)
    nodes = await plan(seeded, sql, *params)
    # Served by an index on the student first (the list index, or for the holding statuses the
    # partial exclusion index), never by a scan of everybody's bookings of that status.
    assert any("student_id" in n.get("Index Cond", "") for n in nodes), nodes
    assert not any(n["Node Type"] == "Seq Scan" or n.get("Index Name") == "bookings_status_idx" for n in nodes), nodes
