"""A discovery page's JSON, written straight from the rows of `repository.list_mentors`.

`MentorsPage` (models.py) stays the page's schema. Building it validated every field of every row
again, a fifth of a cache miss's CPU, for rows that our own writes validated and the database
constrains; this writes the same bytes from plain dicts, which tests/mentors/test_discovery_page.py
holds to byte equality with `MentorsPage(...).model_dump_json()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from pydantic_core import to_json


def page_json(rows: Sequence[asyncpg.Record], next_cursor: str | None) -> bytes:
    """The bytes of `MentorsPage(data=<rows as MentorSummary>, next_cursor=next_cursor)`."""
    return to_json({"data": [_summary(row) for row in rows], "next_cursor": next_cursor})


def _summary(row: asyncpg.Record) -> dict[str, Any]:
    """A row as `MentorSummary` serialises it: its fields in its order."""
    return {
        # pydantic_core serialises asyncpg's UUID subclass several times slower than a str
        "id": str(row["id"]),
        "name": row["name"],
        "headline": row["headline"],
        "skills": row["skills"],
        "languages": row["languages"],
        "years_experience": row["years_experience"],
        "timezone": row["timezone"],
        "hourly_rate": {"amount_minor": row["hourly_rate_minor"], "currency": row["currency"]},
        "stats": {"rating_average": float(row["rating"]), "rating_count": row["rating_count"]},
        "created_at": row["created_at"],
    }
