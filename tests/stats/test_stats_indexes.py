"""EXPLAIN of the stats statements on 30,000 seeded bookings: each reads only the participant's
range of their bookings index, and reviews pages walk reviews_mentor_id_idx without sorting."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from query_plans import index_conditions, plan, seeded_database

from shared.reviews.repository import FIRST_PAGE, NEXT_PAGE
from shared.stats.repository import MENTOR_STATS, STUDENT_STATS

# 300 mentors and 3,000 students; each student has 10 completed bookings spread over the mentors,
# and one review per booking.
SEED = """
INSERT INTO users (email, name, role, password_hash)
SELECT 'm' || g || '@example.com', 'Mentor ' || g, 'mentor', 'unused' FROM generate_series(1, 300) g;
INSERT INTO users (email, name, role, password_hash)
SELECT 's' || g || '@example.com', 'Student ' || g, 'student', 'unused' FROM generate_series(1, 3000) g;
INSERT INTO mentors (id, headline, timezone, hourly_rate_minor, currency)
SELECT id, 'Engineer', 'UTC', 100000, 'INR' FROM users WHERE role = 'mentor';
WITH m AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM mentors),
     s AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM users WHERE role = 'student')
INSERT INTO bookings (student_id, mentor_id, scheduled_at, ends_at, status, price_minor, currency, commission_bps,
                      policy)
SELECT s.id, m.id, timestamptz '2025-01-01' + (s.n * 10 + k) * interval '1 hour',
       timestamptz '2025-01-01' + (s.n * 10 + k) * interval '1 hour' + interval '1 hour',
       'completed', 100000, 'INR', 1500, '{}'
FROM s CROSS JOIN generate_series(0, 9) k JOIN m ON m.n = (s.n * 7 + k * 31) % 300;
INSERT INTO reviews (booking_id, mentor_id, student_id, rating, created_at)
SELECT id, mentor_id, student_id, 4, scheduled_at + interval '2 hours' FROM bookings;
ANALYZE users;
ANALYZE mentors;
ANALYZE bookings;
ANALYZE reviews;
"""


@pytest.fixture(scope="module")
async def seeded(database_url: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    async with seeded_database(database_url, "stats_plans", SEED) as conn:
        yield conn


def assert_reads_only_a_range_of(nodes: list[dict[str, Any]], index: str, column: str) -> None:
    """The plan bounds `index` by `column` and scans no table in full."""
    assert any(column in c for c in index_conditions(nodes, index)), nodes
    assert not any(n["Node Type"] == "Seq Scan" for n in nodes), nodes


async def test_student_stats_read_the_students_range_of_their_index(seeded: asyncpg.Connection[Any]) -> None:
    student = await seeded.fetchval("SELECT id FROM users WHERE role = 'student' LIMIT 1")
    nodes = await plan(seeded, STUDENT_STATS, student, datetime.now(UTC))
    assert_reads_only_a_range_of(nodes, "bookings_student_id_scheduled_at_idx", "student_id")


async def test_mentor_stats_read_the_mentors_range_of_their_index(seeded: asyncpg.Connection[Any]) -> None:
    mentor = await seeded.fetchval("SELECT id FROM mentors LIMIT 1")
    nodes = await plan(seeded, MENTOR_STATS, mentor, datetime.now(UTC))
    assert_reads_only_a_range_of(nodes, "bookings_mentor_id_scheduled_at_idx", "mentor_id")


async def test_review_pages_walk_reviews_mentor_id_idx_without_sorting(seeded: asyncpg.Connection[Any]) -> None:
    mentor = await seeded.fetchval("SELECT id FROM mentors LIMIT 1")
    middle = await seeded.fetchrow(
        "SELECT created_at, id FROM reviews WHERE mentor_id = $1 ORDER BY created_at DESC, id DESC OFFSET 50", mentor
    )
    assert middle is not None
    for nodes in (
        await plan(seeded, FIRST_PAGE, mentor, 21),
        await plan(seeded, NEXT_PAGE, mentor, 21, middle["created_at"], middle["id"]),
    ):
        assert index_conditions(nodes, "reviews_mentor_id_idx"), nodes
        assert not any(n["Node Type"] in ("Sort", "Incremental Sort") for n in nodes), nodes
