"""Bad input on the mentor routes is problem+json over HTTP and stores nothing: NUL in a profile's
free text, slot queries or date overrides at dates whose arithmetic would overflow (422), and JSON
bodies that Python's parser refuses beyond syntax (400)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from api_support import Client, MakeUser
from test_mentors_api import is_problem, new_mentor, profile


@pytest.mark.parametrize("field", ["headline", "bio"])
async def test_nul_in_profile_text_is_422_and_nothing_is_stored(api: Client, make_user: MakeUser, field: str) -> None:
    user = await make_user("mentor")
    created = await api.call("POST", "mentors", profile(**{field: "Python\u0000"}), user=user)
    assert is_problem(created, 422, "validation_failed"), created.body
    assert (await api.call("GET", "mentors/me", user=user)).status == 404

    mentor, before = await new_mentor(api, make_user)
    updated = await api.call("PATCH", "mentors/me", {field: "\u0000"}, user=mentor)
    assert is_problem(updated, 422, "validation_failed"), updated.body
    assert (await api.call("GET", "mentors/me", user=mentor)).body[field] == before[field]


@pytest.mark.parametrize(
    "params",
    [
        {"from": "0001-01-01", "to": "0001-01-02", "tz": "Asia/Kolkata"},  # local midnight is before year 1 in UTC
        {"from": "9999-12-30", "to": "9999-12-31"},  # the day after `to` does not exist
        {"from": "1999-12-31", "to": "2000-01-01"},
    ],
)
async def test_slot_queries_at_unusable_dates_are_422(api: Client, make_user: MakeUser, params: dict[str, Any]) -> None:
    mentor, _ = await new_mentor(api, make_user)
    reply = await api.call("GET", f"mentors/{mentor.id}/slots?" + urlencode(params))
    assert is_problem(reply, 422, "validation_failed"), reply.body


async def test_a_date_override_at_an_unusable_date_is_422(api: Client, make_user: MakeUser) -> None:
    mentor, _ = await new_mentor(api, make_user)
    availability = {"overrides": [{"date": "9999-12-31", "start": "09:00", "end": "10:00"}]}
    reply = await api.call("PUT", "mentors/me/availability", availability, user=mentor)
    assert is_problem(reply, 422, "validation_failed"), reply.body
    assert (await api.call("GET", "mentors/me/availability", user=mentor)).body["overrides"] == []


@pytest.mark.parametrize(
    "raw",
    [
        # Python refuses to convert an integer of more than 4,300 digits (CVE-2020-10735 limit).
        b'{"amount_minor": ' + b"1" * 5000 + b', "currency": "USD"}',
        # Nesting deeper than the interpreter's recursion limit.
        b'{"amount_minor": ' + b"[" * 100_000 + b"]" * 100_000 + b', "currency": "USD"}',
    ],
    ids=["huge-integer", "deep-nesting"],
)
async def test_json_the_parser_cannot_take_is_400_malformed_json(api: Client, make_user: MakeUser, raw: bytes) -> None:
    mentor, before = await new_mentor(api, make_user)
    reply = await api.call("PUT", "mentors/me/hourly-rate", raw=raw, user=mentor)
    assert is_problem(reply, 400, "malformed_json"), reply.body
    assert (await api.call("GET", "mentors/me", user=mentor)).body["hourly_rate"] == before["hourly_rate"]
