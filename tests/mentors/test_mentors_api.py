"""Mentor profile routes over HTTP: success, validation and authorisation paths."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from api_support import Client, MakeUser, User


def profile(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "headline": "Senior Python engineer",
        "bio": "I help with backends.",
        "skills": ["Python", "sql"],
        "languages": ["en", "hi"],
        "years_experience": 9,
        "timezone": "Asia/Kolkata",
        "hourly_rate": {"amount_minor": 150_000, "currency": "INR"},
        "upi_id": "Mentor.One@okaxis",
    }
    body.update(overrides)
    return body


async def new_mentor(api: Client, make_user: MakeUser, **overrides: Any) -> tuple[User, dict[str, Any]]:
    user = await make_user("mentor")
    reply = await api.call("POST", "mentors", profile(**overrides), user=user)
    assert reply.status == 201, reply.body
    return user, reply.body


def is_problem(reply: Any, status: int, code: str) -> bool:
    return (
        reply.status == status
        and reply.headers["Content-Type"].startswith("application/problem+json")
        and reply.body["code"] == code
    )


async def test_a_mentor_creates_a_profile_and_anyone_reads_it_without_the_upi_id(
    api: Client, make_user: MakeUser
) -> None:
    user, created = await new_mentor(api, make_user)
    assert created["id"] == str(user.id)
    assert created["skills"] == ["python", "sql"]  # normalised
    assert created["upi_id"] == "mentor.one@okaxis"
    assert created["hourly_rate"] == {"amount_minor": 150_000, "currency": "INR"}
    assert created["stats"] == {"rating_average": 0.0, "rating_count": 0}
    assert created["session_lengths"] == [30, 60] and created["is_active"] is True

    public = await api.call("GET", f"mentors/{user.id}")
    assert public.status == 200
    assert "upi_id" not in public.body and "is_active" not in public.body
    assert public.body["name"] == created["name"] and public.body["stats"]["rating_count"] == 0

    own = await api.call("GET", "mentors/me", user=user)
    assert own.status == 200 and own.body == created


async def test_a_second_profile_for_the_same_user_is_a_conflict(api: Client, make_user: MakeUser) -> None:
    user, _ = await new_mentor(api, make_user)
    assert is_problem(await api.call("POST", "mentors", profile(), user=user), 409, "already_exists")


@pytest.mark.parametrize(
    "change",
    [
        {"timezone": "Mars/Olympus"},
        {"timezone": "../../etc/passwd"},
        {"upi_id": "not-a-vpa"},
        {"upi_id": "a@1bank"},
        {"hourly_rate": {"amount_minor": -1, "currency": "INR"}},
        {"hourly_rate": {"amount_minor": 100, "currency": "inr"}},
        {"hourly_rate": {"amount_minor": 1.5, "currency": "INR"}},
        # Money amounts are whole minor units, never coerced from another JSON type.
        {"hourly_rate": {"amount_minor": True, "currency": "INR"}},
        {"hourly_rate": {"amount_minor": 100.0, "currency": "INR"}},
        {"hourly_rate": {"amount_minor": "100", "currency": "INR"}},
        # Only currencies the payment providers take in the minor unit we store (see ACCEPTED_CURRENCIES).
        {"hourly_rate": {"amount_minor": 100, "currency": "ZZZ"}},
        {"hourly_rate": {"amount_minor": 100, "currency": "XXX"}},
        {"hourly_rate": {"amount_minor": 1000, "currency": "KWD"}},  # 3 decimals: Stripe wants a multiple of 10
        {"hourly_rate": {"amount_minor": 100, "currency": "ISK"}},  # a Stripe special case (amount x 100)
        # Names a host's zone database may hold that are no IANA zone, or mean the host's own setting.
        {"timezone": "localtime"},
        {"timezone": "Factory"},
        {"timezone": "posixrules"},
        {"timezone": "posix/Asia/Kolkata"},
        {"timezone": "right/UTC"},
        {"headline": ""},
        {"skills": ["x" * 60]},
        {"languages": ["english!"]},
        {"years_experience": 200},
        {"rating": 5},  # derived from reviews, never client-settable
    ],
)
async def test_invalid_profiles_are_422_problems_naming_only_the_location(
    api: Client, make_user: MakeUser, change: dict[str, Any]
) -> None:
    reply = await api.call("POST", "mentors", profile(**change), user=await make_user("mentor"))
    assert is_problem(reply, 422, "validation_failed")
    assert all(set(error) == {"loc", "type"} for error in reply.body["errors"])


@pytest.mark.parametrize("currency", ["INR", "USD", "EUR", "GBP", "JPY"])
async def test_accepted_currencies_are_stored_as_given(api: Client, make_user: MakeUser, currency: str) -> None:
    _, created = await new_mentor(api, make_user, hourly_rate={"amount_minor": 5_000, "currency": currency})
    assert created["hourly_rate"] == {"amount_minor": 5_000, "currency": currency}


async def test_skills_and_languages_are_stored_once_each_in_first_seen_order(api: Client, make_user: MakeUser) -> None:
    user, created = await new_mentor(
        api, make_user, skills=["Python", "sql", "python", " PYTHON", "SQL"], languages=["EN", "hi", "en"]
    )
    assert created["skills"] == ["python", "sql"] and created["languages"] == ["en", "hi"]
    reply = await api.call(
        "PATCH", "mentors/me", {"skills": ["Go", " go", "Rust"], "languages": ["ta", "TA"]}, user=user
    )
    assert reply.status == 200
    assert reply.body["skills"] == ["go", "rust"] and reply.body["languages"] == ["ta"]


async def test_malformed_json_is_400(api: Client, make_user: MakeUser) -> None:
    reply = await api.call("POST", "mentors", raw=b"{not json", user=await make_user("mentor"))
    assert is_problem(reply, 400, "malformed_json")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "mentors", profile()),
        ("GET", "mentors/me", None),
        ("PATCH", "mentors/me", {"headline": "x"}),
        ("PUT", "mentors/me/hourly-rate", {"amount_minor": 1, "currency": "USD"}),
        ("PUT", "mentors/me/upi-id", {"upi_id": "a.b@okicici"}),
        ("GET", "mentors/me/availability", None),
        ("PUT", "mentors/me/availability", {"weekly": []}),
    ],
)
async def test_mentor_routes_need_a_mentor(
    api: Client, make_user: MakeUser, method: str, path: str, body: dict[str, Any] | None
) -> None:
    assert is_problem(await api.call(method, path, body), 401, "missing_token")
    expired = User(uuid.uuid4(), "mentor", "not.a.token")
    assert (await api.call(method, path, body, user=expired)).status == 401
    for role in ("student", "admin"):
        assert is_problem(await api.call(method, path, body, user=await make_user(role)), 403, "forbidden")


async def test_a_mentor_user_without_a_profile_gets_404_from_me_routes(api: Client, make_user: MakeUser) -> None:
    user = await make_user("mentor")
    assert is_problem(await api.call("GET", "mentors/me", user=user), 404, "mentor_not_found")
    assert is_problem(await api.call("PATCH", "mentors/me", {"bio": "x"}, user=user), 404, "mentor_not_found")
    body = {"amount_minor": 5, "currency": "USD"}
    assert is_problem(await api.call("PUT", "mentors/me/hourly-rate", body, user=user), 404, "mentor_not_found")


async def test_patch_changes_only_the_fields_sent(api: Client, make_user: MakeUser) -> None:
    user, created = await new_mentor(api, make_user)
    reply = await api.call("PATCH", "mentors/me", {"headline": "Staff engineer", "skills": ["Go"]}, user=user)
    assert reply.status == 200
    assert reply.body["headline"] == "Staff engineer" and reply.body["skills"] == ["go"]
    assert reply.body["bio"] == created["bio"] and reply.body["timezone"] == created["timezone"]
    assert is_problem(await api.call("PATCH", "mentors/me", {"is_active": False}, user=user), 422, "validation_failed")


async def test_hourly_rate_and_upi_id_are_replaced_and_validated(api: Client, make_user: MakeUser) -> None:
    user, _ = await new_mentor(api, make_user)
    reply = await api.call("PUT", "mentors/me/hourly-rate", {"amount_minor": 4_500, "currency": "USD"}, user=user)
    assert reply.status == 200 and reply.body["hourly_rate"] == {"amount_minor": 4_500, "currency": "USD"}
    reply = await api.call("PUT", "mentors/me/upi-id", {"upi_id": " New.Id-1@ybl "}, user=user)
    assert reply.status == 200 and reply.body["upi_id"] == "new.id-1@ybl"
    for bad in ({"upi_id": "nobank@"}, {"upi_id": "@ybl"}, {"upi_id": "two@@ybl"}, {}):
        assert is_problem(await api.call("PUT", "mentors/me/upi-id", bad, user=user), 422, "validation_failed")
    for bad_rate in (
        {"amount_minor": 10, "currency": "USD", "extra": 1},
        {"amount_minor": True, "currency": "USD"},
        {"amount_minor": 10, "currency": "ZZZ"},
    ):
        reply = await api.call("PUT", "mentors/me/hourly-rate", bad_rate, user=user)
        assert is_problem(reply, 422, "validation_failed"), bad_rate
    own = await api.call("GET", "mentors/me", user=user)
    assert own.body["hourly_rate"] == {"amount_minor": 4_500, "currency": "USD"}


async def test_unknown_and_malformed_mentor_ids_are_404(api: Client) -> None:
    assert is_problem(await api.call("GET", f"mentors/{uuid.uuid4()}"), 404, "mentor_not_found")
    assert (await api.call("GET", "mentors/not-a-uuid")).status == 404


async def test_admins_deactivate_and_reactivate_a_profile(api: Client, make_user: MakeUser) -> None:
    user, _ = await new_mentor(api, make_user)
    admin = await make_user("admin")
    path = f"admin/mentors/{user.id}/active"
    for role in ("student", "mentor"):
        assert is_problem(await api.call("PUT", path, {"active": False}, user=await make_user(role)), 403, "forbidden")
    assert is_problem(await api.call("PUT", path, {"active": False}), 401, "missing_token")
    assert is_problem(await api.call("PUT", path, {"active": "no"}, user=admin), 422, "validation_failed")

    reply = await api.call("PUT", path, {"active": False}, user=admin)
    assert reply.status == 200 and reply.body["is_active"] is False
    assert (await api.call("GET", f"mentors/{user.id}")).status == 404
    assert (await api.call("GET", "mentors/me", user=user)).body["is_active"] is False  # the mentor still sees it
    assert (await api.call("PUT", path, {"active": True}, user=admin)).status == 200
    assert (await api.call("GET", f"mentors/{user.id}")).status == 200
    missing = f"admin/mentors/{uuid.uuid4()}/active"
    assert is_problem(await api.call("PUT", missing, {"active": True}, user=admin), 404, "mentor_not_found")


async def test_a_mentor_whose_role_is_no_longer_mentor_is_not_listed_public_or_bookable(
    api: Client, make_user: MakeUser
) -> None:
    skill = f"skill-{uuid.uuid4().hex[:10]}"
    user, _ = await new_mentor(api, make_user, skills=[skill], timezone="UTC")
    hours = {"weekly": [{"weekday": d, "start": "08:00", "end": "20:00"} for d in range(1, 8)], "session_lengths": [60]}
    assert (await api.call("PUT", "mentors/me/availability", hours, user=user)).status == 200
    day = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    slots_path = f"mentors/{user.id}/slots?" + urlencode({"from": day, "to": day})
    start = (await api.call("GET", slots_path)).body["slots"][0]["start"]
    admin, student = await make_user("admin"), await make_user("student")
    booking = {"mentor_id": str(user.id), "start": start, "length_minutes": 60}

    assert (await api.call("PATCH", f"admin/users/{user.id}", {"role": "student"}, user=admin)).status == 200
    # Never listed before, so this list is loaded from the database, not served from the cache.
    assert (await api.call("GET", "mentors?" + urlencode({"skill": skill}))).body["data"] == []
    assert is_problem(await api.call("GET", f"mentors/{user.id}"), 404, "mentor_not_found")
    assert is_problem(await api.call("GET", slots_path), 404, "mentor_not_found")
    assert is_problem(await api.call("GET", f"mentors/{user.id}/reviews"), 404, "mentor_not_found")
    assert is_problem(await api.call("POST", "bookings", booking, user=student), 404, "mentor_not_found")

    assert (await api.call("PATCH", f"admin/users/{user.id}", {"role": "mentor"}, user=admin)).status == 200
    assert [
        m["id"] for m in (await api.call("GET", "mentors?" + urlencode({"skill": skill, "limit": 5}))).body["data"]
    ] == [str(user.id)]
    assert (await api.call("GET", f"mentors/{user.id}")).status == 200
    assert (await api.call("POST", "bookings", booking, user=student)).status == 201
