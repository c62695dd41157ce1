"""An Idempotency-Key fingerprint is taken over the validated request in canonical form."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from shared.idempotency import fingerprint


class Request(BaseModel):  # a plain datetime, as a model that does not use shared.models might have
    at: datetime
    ids: list[uuid.UUID]
    nested: dict[str, datetime]


def test_the_same_instants_at_other_offsets_have_one_fingerprint() -> None:
    ids = [str(uuid.uuid4())]
    utc = Request.model_validate({"at": "2030-01-01T10:00:00Z", "ids": ids, "nested": {"b": "2030-01-01T00:00Z"}})
    shifted = Request.model_validate(
        {"nested": {"b": "2029-12-31T19:00:00-05:00"}, "ids": ids, "at": "2030-01-01T15:30:00.000+05:30"}
    )
    assert fingerprint(utc) == fingerprint(shifted)


def test_another_instant_or_value_changes_it() -> None:
    ids = [str(uuid.uuid4())]
    base = {"at": "2030-01-01T10:00:00Z", "ids": ids, "nested": {"b": "2030-01-01T00:00:00Z"}}
    first = fingerprint(Request.model_validate(base))
    assert fingerprint(Request.model_validate({**base, "at": "2030-01-01T10:00:00.000001Z"})) != first
    assert fingerprint(Request.model_validate({**base, "at": "2030-01-01T10:00:00+05:30"})) != first
    assert fingerprint(Request.model_validate({**base, "ids": [str(uuid.uuid4())]})) != first
