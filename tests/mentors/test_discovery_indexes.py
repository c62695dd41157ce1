"""EXPLAIN of the discovery queries on 3,000 seeded mentors: each sort and filter uses its index."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from shared.db.migrate import migrate
from shared.mentors.models import MentorQuery
from shared.mentors.repository import SORTS, list_query

SEED = """
INSERT INTO users (id, email, name, role, password_hash)
SELECT gen_random_uuid(), 'm' || g || '@example.com', 'Mentor ' || g, 'mentor', 'unused'
FROM generate_series(1, 3000) g;
INSERT INTO mentors (id, headline, bio, skills, languages, timezone, hourly_rate_minor, currency, rating, rating_count,
                     is_active, created_at)
SELECT id, 'Engineer', repeat('bio text ', 40),
       CASE WHEN n % 100 = 1 THEN ARRAY['rust', 'python'] ELSE ARRAY['python', 'sql'] END,
       CASE WHEN n % 50 = 1 THEN ARRAY['ta'] ELSE ARRAY['en'] END, 'UTC', 500 + (n * 37) % 9000, 'INR',
       round((n * 7 % 500) / 100.0, 2), n % 40, n % 10 <> 0, now() - n * interval '1 minute'
FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM users) u;
ANALYZE users;
ANALYZE mentors;
"""


@pytest.fixture
async def seeded(empty_database_url: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    await migrate(empty_database_url)
    conn = await asyncpg.connect(empty_database_url)
    await conn.execute(SEED)
    yield conn
    await conn.close()


async def plan(conn: asyncpg.Connection[Any], query: MentorQuery, after: tuple[Any, uuid.UUID] | None = None) -> str:
    sql, params = list_query(query, after)
    return json.dumps(json.loads(await conn.fetchval("EXPLAIN (FORMAT JSON) " + sql, *params)))


def nodes(plan_json: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        found.append(node)
        for child in node.get("Plans", []):
            walk(child)

    walk(json.loads(plan_json)[0]["Plan"])
    return found


def uses(plan_json: str, index: str) -> bool:
    return any(node.get("Index Name") == index for node in nodes(plan_json))


def sorts(plan_json: str) -> bool:
    return any(node["Node Type"] in ("Sort", "Incremental Sort") for node in nodes(plan_json))


@pytest.mark.parametrize(
    ("sort", "index"),
    [
        ("rating", "mentors_is_active_rating_idx"),
        ("price", "mentors_is_active_price_idx"),
        ("newest", "mentors_is_active_created_idx"),
    ],
)
async def test_each_sort_walks_its_partial_index_without_sorting(
    seeded: asyncpg.Connection[Any], sort: str, index: str
) -> None:
    query = MentorQuery(sort=sort, currency="INR" if sort == "price" else None)  # type: ignore[arg-type]
    first_page = await plan(seeded, query)
    assert uses(first_page, index) and not sorts(first_page), first_page
    # A cursor a few pages in, with most of the list still ahead of it.
    sql = "SELECT rating, hourly_rate_minor, created_at, id FROM mentors m WHERE is_active ORDER BY {} OFFSET 100"
    row = await seeded.fetchrow(sql.format(SORTS[sort][0]))  # a repository constant, not input
    assert row is not None
    key = {"rating": row["rating"], "price": row["hourly_rate_minor"], "newest": row["created_at"]}[sort]
    later_page = await plan(seeded, query, (key, row["id"]))
    assert uses(later_page, index) and not sorts(later_page), later_page


async def test_the_keyset_condition_is_an_index_condition_not_a_filter(seeded: asyncpg.Connection[Any]) -> None:
    later_page = await plan(seeded, MentorQuery(sort="rating"), (Decimal("2.5"), uuid.UUID(int=0)))
    scan = next(n for n in nodes(later_page) if n.get("Index Name") == "mentors_is_active_rating_idx")
    assert "rating" in scan.get("Index Cond", ""), later_page


async def test_a_rare_skill_or_language_uses_the_gin_indexes(seeded: asyncpg.Connection[Any]) -> None:
    assert uses(await plan(seeded, MentorQuery(skill="rust")), "mentors_skills_idx")
    assert uses(await plan(seeded, MentorQuery(language="ta")), "mentors_languages_idx")


async def test_a_common_filter_still_walks_the_sort_index(seeded: asyncpg.Connection[Any]) -> None:
    query = MentorQuery(skill="python", min_rating=1.0, sort="rating")
    assert uses(await plan(seeded, query), "mentors_is_active_rating_idx")
