"""HTTP boundary models for reviews: writing one, and a mentor's public review pages."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from shared.http.cursor import CursorParam
from shared.models import Text


class ReviewCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Strict: "5", 4.5 and true are refused rather than coerced into a star count.
    rating: Annotated[StrictInt, Field(ge=1, le=5)]
    text: Annotated[Text, StringConstraints(strip_whitespace=True, max_length=5000)] = ""


class Review(BaseModel):
    """A review as its author gets it back."""

    id: uuid.UUID
    booking_id: uuid.UUID
    mentor_id: uuid.UUID
    rating: int
    text: str
    created_at: datetime


class ReviewPublic(BaseModel):
    """A review as anyone reads it on the mentor's page: the author appears by first name only."""

    id: uuid.UUID
    rating: int
    text: str
    created_at: datetime
    reviewer_first_name: str | None = Field(description="The student's first name; null once the account is deleted")


class ReviewsPage(BaseModel):
    data: list[ReviewPublic]
    next_cursor: str | None


class ReviewQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: Annotated[int, Field(ge=1, le=50)] = 20
    cursor: CursorParam | None = None
