"""A discovery page is written from the rows without validating them again (discovery_page.py): its
bytes must be exactly those of the documented schema, `MentorsPage(...).model_dump_json()`."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from shared.cache.cache import Cache
from shared.db.database import Database
from shared.mentors import repository, service
from shared.mentors.models import MentorQuery, MentorsPage, MentorStats, MentorSummary, Money

# name, headline, skills (besides the test's own), languages, years, currency, amount, rating, count, created_at
MENTORS: list[tuple[str, str, list[str], list[str], int, str, int, str, int, datetime]] = [
    ("Zoë Ångström 李小龙 🚀", 'Says "hi" \\ then\nleaves\ttabs', [], [], 0, "JPY", 0, "0", 0,
     datetime(2024, 2, 29, 23, 59, 59, 999_999, UTC)),
    ("Ravi Kumar", "Go, k8s", ["c++", "c#"], ["en", "hi", "pt-br"], 80, "INR", 100_000_000, "4.5", 2,
     datetime(2031, 1, 1, tzinfo=UTC)),
    ("\u2028line\u2029separators\x1f", "Système", ["python"], ["fr"], 7, "USD", 12_345, "3.25", 7,
     datetime(2025, 6, 15, 12, 34, 56, 1, UTC)),
    ("Ana", "Data", [], ["en"], 12, "EUR", 1_999, "5", 99, datetime(2000, 1, 1, 0, 0, 0, 500_000, UTC)),
    ("Bo", "SQL", ["sql"], ["en"], 3, "GBP", 50, "0.01", 1, datetime(2199, 12, 31, 23, 59, 59, 999_999, UTC)),
    ("Chitra", "Rust", [], ["ta"], 1, "INR", 100_000_000, "4.5", 3, datetime(2031, 1, 1, tzinfo=UTC)),
    ("Dev", "Java", ["java"], ["en"], 30, "INR", 99_999, "3.33", 12, datetime(2026, 3, 4, 5, 6, 7, 89, UTC)),
]  # fmt: skip


def validated_summary(row: asyncpg.Record) -> MentorSummary:
    """A row of `repository.list_mentors` through the models, as discovery built its pages before."""
    return MentorSummary(
        id=row["id"],
        name=row["name"],
        headline=row["headline"],
        skills=row["skills"],
        languages=row["languages"],
        years_experience=row["years_experience"],
        timezone=row["timezone"],
        hourly_rate=Money(amount_minor=row["hourly_rate_minor"], currency=row["currency"]),
        stats=MentorStats(rating_average=float(row["rating"]), rating_count=row["rating_count"]),
        created_at=row["created_at"],
    )


async def seed(db: asyncpg.Connection[Any], skill: str) -> None:
    for name, headline, skills, languages, years, currency, amount, rating, count, created_at in MENTORS:
        mentor_id = await db.fetchval(
            "INSERT INTO users (email, name, role, password_hash) VALUES ($1, $2, 'mentor', 'unused') RETURNING id",
            f"{uuid.uuid4().hex[:12]}@example.com",
            name,
        )
        await db.execute(
            """INSERT INTO mentors (id, headline, skills, languages, years_experience, timezone, hourly_rate_minor,
                                    currency, rating, rating_count, created_at)
               VALUES ($1, $2, $3, $4, $5, 'Asia/Kolkata', $6, $7, $8, $9, $10)""",
            mentor_id,
            headline,
            [skill, *skills],
            languages,
            years,
            amount,
            currency,
            Decimal(rating),
            count,
            created_at,
        )


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "rating", "limit": 2},
        {"sort": "newest", "limit": 3},
        {"sort": "price", "currency": "INR", "limit": 1},
        {"sort": "rating", "language": "en", "limit": 50},
        {"sort": "newest", "min_rating": 3.25, "limit": 2},
    ],
)
async def test_every_page_has_the_bytes_of_the_pydantic_models(
    db: asyncpg.Connection[Any], app_database: Database, app_cache: Cache, params: dict[str, Any]
) -> None:
    skill = f"page-{uuid.uuid4().hex[:10]}"
    await seed(db, skill)
    cursor: str | None = None
    pages, listed = 0, 0
    while True:
        query = MentorQuery.model_validate({**params, "skill": skill, "cursor": cursor})
        body = await service.list_mentors(app_database, app_cache, query)  # a miss: a new skill
        after = None if cursor is None else service.DISCOVERY_CURSORS[query.sort].decode(cursor)[1:3]
        rows = (await repository.list_mentors(db, query, after))[: query.limit]
        cursor = json.loads(body)["next_cursor"]
        expected = MentorsPage(data=[validated_summary(r) for r in rows], next_cursor=cursor)
        assert body == expected.model_dump_json().encode()
        pages, listed = pages + 1, listed + len(rows)
        if cursor is None:
            break
    assert listed > 0
    assert pages > 1 or params["limit"] == 50
