"""GET /api/mentors over HTTP: filters, sorts, cursor pages, and a cache that never serves a list
from before an acknowledged write (the invalidation matrix and a write/read race)."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
from api_support import Client, MakeUser, User
from test_mentors_api import new_mentor

from devhost.testing import HostThread
from shared import resources
from shared.mentors import repository, service


def unique_skill() -> str:
    return f"skill-{uuid.uuid4().hex[:10]}"


async def listing(api: Client, **params: Any) -> dict[str, Any]:
    reply = await api.call("GET", "mentors?" + urlencode(params))
    assert reply.status == 200, reply.body
    body: dict[str, Any] = reply.body
    return body


async def cohort(api: Client, make_user: MakeUser, skill: str, rates: list[int]) -> list[User]:
    users = []
    for i, rate in enumerate(rates):
        user, _ = await new_mentor(
            api,
            make_user,
            skills=[skill, "python"],
            languages=["en"] if i % 2 else ["hi"],
            hourly_rate={"amount_minor": rate, "currency": "INR" if i % 3 else "USD"},
        )
        users.append(user)
    return users


async def test_filters_select_the_matching_mentors_with_their_stats(api: Client, make_user: MakeUser) -> None:
    skill = unique_skill()
    users = await cohort(api, make_user, skill, [1000, 2000, 3000, 4000, 5000, 6000])
    everyone = await listing(api, skill=skill, limit=50)
    assert {m["id"] for m in everyone["data"]} == {str(u.id) for u in users}
    assert everyone["next_cursor"] is None
    assert all(set(m["stats"]) == {"rating_average", "rating_count"} for m in everyone["data"])
    english = await listing(api, skill=skill, language="EN")
    assert {m["id"] for m in english["data"]} == {str(users[i].id) for i in (1, 3, 5)}
    priced = await listing(api, skill=skill, min_price=2000, max_price=5000, currency="INR")
    assert {m["id"] for m in priced["data"]} == {str(users[i].id) for i in (1, 2, 4)}
    assert (await listing(api, skill=skill, min_rating=4.5))["data"] == []


async def test_sorts_and_cursor_pages_walk_a_stable_total_order(api: Client, make_user: MakeUser) -> None:
    skill = unique_skill()
    users = await cohort(api, make_user, skill, [3000, 1000, 2000, 1000, 5000, 4000, 1000])
    in_inr = [u for i, u in enumerate(users) if i % 3]  # cohort() prices every third mentor in USD
    for sort, filters, key, expected in (
        ("price", {"currency": "INR"}, lambda m: (m["hourly_rate"]["amount_minor"], m["id"]), in_inr),
        ("newest", {}, None, users),
        ("rating", {}, None, users),
    ):
        whole = (await listing(api, skill=skill, sort=sort, limit=50, **filters))["data"]
        pages: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"skill": skill, "sort": sort, "limit": 2, **filters}
            if cursor:
                params["cursor"] = cursor
            page = await listing(api, **params)
            pages += page["data"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert [m["id"] for m in pages] == [m["id"] for m in whole]
        assert {m["id"] for m in pages} == {str(u.id) for u in expected} and len(pages) == len(expected)
        if key is not None:
            assert pages == sorted(pages, key=key)
    newest = (await listing(api, skill=skill, sort="newest"))["data"]
    assert [m["id"] for m in newest] == [str(u.id) for u in reversed(users)]


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "cheapest"},
        {"limit": 0},
        {"limit": 51},
        {"min_rating": 6},
        {"min_price": -1},
        {"min_price": 10, "max_price": 5},
        {"currency": "rupees"},
        {"cursor": "garbage!"},
        {"cursor": "WyJwcmljZSIsIjEwIiwieCJd"},  # ["price","10","x"]: not a uuid
        {"unknown": "1"},
    ],
)
async def test_bad_query_parameters_are_422_problems(api: Client, params: dict[str, Any]) -> None:
    reply = await api.call("GET", "mentors?" + urlencode(params))
    assert reply.status == 422
    assert reply.headers["Content-Type"].startswith("application/problem+json")


async def test_a_cursor_from_another_sort_is_refused(api: Client, make_user: MakeUser) -> None:
    skill = unique_skill()
    await cohort(api, make_user, skill, [1, 2, 3])
    cursor = (await listing(api, skill=skill, sort="price", currency="INR", limit=1))["next_cursor"]
    params = {"skill": skill, "sort": "rating", "currency": "INR", "cursor": cursor}
    reply = await api.call("GET", "mentors?" + urlencode(params))
    assert reply.status == 422 and reply.body["code"] == "invalid_cursor"


@pytest.mark.parametrize(
    "changed",
    [
        {"skill": "python"},
        {"language": "en"},
        {"currency": "USD"},
        {"min_rating": 0},
        {"min_price": 0, "currency": "INR"},
        {"max_price": 100_000, "currency": "INR"},
        {"drop": "skill"},
    ],
)
async def test_a_cursor_issued_for_other_filters_is_refused(
    api: Client, make_user: MakeUser, changed: dict[str, Any]
) -> None:
    skill = unique_skill()
    await cohort(api, make_user, skill, [1, 2, 3])
    issued_for: dict[str, Any] = {"skill": skill, "sort": "newest", "limit": 1}
    cursor = (await listing(api, **issued_for))["next_cursor"]
    assert cursor is not None
    # The same filters with another page size continue the walk.
    assert (await api.call("GET", "mentors?" + urlencode({**issued_for, "limit": 5, "cursor": cursor}))).status == 200
    params = {**issued_for, **changed, "cursor": cursor}
    if "drop" in changed:
        del params[params.pop("drop")]
    reply = await api.call("GET", "mentors?" + urlencode(params))
    assert reply.status == 422 and reply.body["code"] == "invalid_cursor", reply.body


def with_key(cursor: str, key: Any) -> str:
    """`cursor` (a discovery cursor: [sort, key, ...]) with its sort key swapped, as a client could."""
    fields = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    fields[1] = key
    return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "rating", ["1E-99999", "0E-99999", "0E+99999", "1E-16384", "1E-1000", "4.999", "0.001", "5.01", "-0.01"]
)
async def test_a_rating_cursor_outside_the_columns_numeric_3_2_is_refused(
    api: Client, make_user: MakeUser, rating: str
) -> None:
    """The rating column is numeric(3,2): a key with more digits, or an exponent asyncpg cannot even
    encode, is not one this list issued."""
    skill = unique_skill()
    await cohort(api, make_user, skill, [1, 2])
    cursor = (await listing(api, skill=skill, sort="rating", limit=1))["next_cursor"]
    assert (
        await api.call("GET", "mentors?" + urlencode({"skill": skill, "cursor": with_key(cursor, "4.5")}))
    ).status == 200
    reply = await api.call("GET", "mentors?" + urlencode({"skill": skill, "cursor": with_key(cursor, rating)}))
    assert reply.status == 422 and reply.body["code"] == "invalid_cursor", reply.body
    assert reply.headers["Content-Type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "price"},
        {"min_price": 100},
        {"max_price": 100},
        {"min_price": 1, "max_price": 100, "sort": "rating"},
    ],
)
async def test_price_filters_and_the_price_sort_need_a_currency(api: Client, params: dict[str, Any]) -> None:
    reply = await api.call("GET", "mentors?" + urlencode(params))
    assert reply.status == 422 and reply.body["code"] == "validation_failed"
    assert reply.body["errors"] == [{"loc": ["currency"], "type": "currency_required"}]


async def test_price_filters_and_sort_compare_amounts_in_one_currency_only(api: Client, make_user: MakeUser) -> None:
    skill = unique_skill()
    rates = [(5000, "USD"), (4000, "INR"), (1000, "JPY"), (3000, "INR")]
    users = [
        (await new_mentor(api, make_user, skills=[skill], hourly_rate={"amount_minor": a, "currency": c}))[0]
        for a, c in rates
    ]
    by_price = (await listing(api, skill=skill, sort="price", currency="INR"))["data"]
    assert [m["id"] for m in by_price] == [str(users[3].id), str(users[1].id)]
    cheap = (await listing(api, skill=skill, max_price=4500, currency="USD"))["data"]
    assert cheap == []
    cheap = (await listing(api, skill=skill, max_price=4500, currency="JPY"))["data"]
    assert [m["id"] for m in cheap] == [str(users[2].id)]


def by_id(page: dict[str, Any], user: User) -> dict[str, Any]:
    return next(m for m in page["data"] if m["id"] == str(user.id))


async def test_every_mutation_in_the_invalidation_table_shows_in_the_next_read(
    api: Client, make_user: MakeUser, app_host: HostThread
) -> None:
    skill = unique_skill()
    (mentor,) = await cohort(api, make_user, skill, [1000])
    admin = await make_user("admin")

    async def cached_listing() -> dict[str, Any]:
        first = await listing(api, skill=skill)
        assert await listing(api, skill=skill) == first  # the second read is served from the cache
        return first

    async def generation() -> bytes | None:
        redis = await resources.get_redis()
        value: bytes | None = await redis.get("{mentors:list}:gen")
        return value

    # createMentor
    await cached_listing()
    (newcomer,) = await cohort(api, make_user, skill, [2000])
    assert str(newcomer.id) in {m["id"] for m in (await listing(api, skill=skill))["data"]}

    # updateMentorHourlyRate
    await cached_listing()
    await api.call("PUT", "mentors/me/hourly-rate", {"amount_minor": 777, "currency": "EUR"}, user=mentor)
    assert by_id(await listing(api, skill=skill), mentor)["hourly_rate"] == {"amount_minor": 777, "currency": "EUR"}

    # PATCH /mentors/me (profile fields the list shows)
    await cached_listing()
    await api.call("PATCH", "mentors/me", {"headline": "Changed headline"}, user=mentor)
    assert by_id(await listing(api, skill=skill), mentor)["headline"] == "Changed headline"

    # updateMentorUpiId: not in the public list, but the list is recomputed (its generation moves)
    await cached_listing()
    before = app_host.call(generation())
    await api.call("PUT", "mentors/me/upi-id", {"upi_id": "changed@okhdfc"}, user=mentor)
    assert app_host.call(generation()) != before
    assert (await api.call("GET", "mentors/me", user=mentor)).body["upi_id"] == "changed@okhdfc"

    # updateMentorRating (internal step of the reviews feature)
    await cached_listing()

    async def rate() -> None:
        db, cache = await resources.get_database(), await resources.get_cache()
        await service.update_mentor_rating(db, cache, mentor.id, average=Decimal("4.5"), count=2)

    app_host.call(rate())
    assert by_id(await listing(api, skill=skill), mentor)["stats"] == {"rating_average": 4.5, "rating_count": 2}

    # createReview: writes the aggregate in its own transaction, then invalidates after commit
    await cached_listing()

    async def review() -> None:
        db, cache = await resources.get_database(), await resources.get_cache()
        async with db.transaction() as conn:
            await repository.set_rating(conn, mentor.id, Decimal("4.67"), 3)
        await service.invalidate_mentor_list(cache)

    app_host.call(review())
    assert by_id(await listing(api, skill=skill), mentor)["stats"] == {"rating_average": 4.67, "rating_count": 3}

    # admin deactivation
    await cached_listing()
    await api.call("PUT", f"admin/mentors/{mentor.id}/active", {"active": False}, user=admin)
    assert str(mentor.id) not in {m["id"] for m in (await listing(api, skill=skill))["data"]}


async def test_account_writes_in_the_invalidation_table_show_in_the_next_read(api: Client, make_user: MakeUser) -> None:
    """The list shows the account's name and lists only active accounts with the mentor role, so
    the accounts routes that change those bump it too."""
    skill = unique_skill()
    renamed, deactivated, demoted, leaving = await cohort(api, make_user, skill, [1000, 2000, 3000, 4000])
    admin = await make_user("admin")

    async def cached_ids() -> set[str]:
        first = await listing(api, skill=skill)
        assert await listing(api, skill=skill) == first  # the second read is served from the cache
        return {m["id"] for m in first["data"]}

    async def ids_after(method: str, path: str, body: dict[str, Any] | None, user: User) -> set[str]:
        reply = await api.call(method, path, body, user=user)
        assert reply.status in (200, 204), reply.body
        return {m["id"] for m in (await listing(api, skill=skill))["data"]}

    # PATCH /users/me: the name
    await cached_ids()
    await ids_after("PATCH", "users/me", {"name": "Renamed Mentor"}, renamed)
    assert by_id(await listing(api, skill=skill), renamed)["name"] == "Renamed Mentor"

    # PATCH /admin/users/{id}: status, then role, each way
    for who, change, listed in [
        (deactivated, {"status": "deactivated"}, False),
        (deactivated, {"status": "active"}, True),
        (demoted, {"role": "student"}, False),
        (demoted, {"role": "mentor"}, True),
    ]:
        assert (str(who.id) in await cached_ids()) is not listed
        assert (str(who.id) in await ids_after("PATCH", f"admin/users/{who.id}", change, admin)) is listed, change

    # DELETE /users/me
    assert str(leaving.id) in await cached_ids()
    assert str(leaving.id) not in await ids_after("DELETE", "users/me", None, leaving)


async def test_reads_racing_writes_never_see_a_price_older_than_an_acknowledged_write(
    api: Client, make_user: MakeUser
) -> None:
    skill = unique_skill()
    (mentor,) = await cohort(api, make_user, skill, [1])
    acknowledged = 1
    stale: list[tuple[int, int]] = []
    done = asyncio.Event()

    async def writer() -> None:
        nonlocal acknowledged
        for amount in range(2, 42):
            reply = await api.call(
                "PUT", "mentors/me/hourly-rate", {"amount_minor": amount, "currency": "INR"}, user=mentor
            )
            assert reply.status == 200
            acknowledged = amount
        done.set()

    async def reader() -> int:
        reads = 0
        while not done.is_set():
            floor = acknowledged
            seen = by_id(await listing(api, skill=skill), mentor)["hourly_rate"]["amount_minor"]
            if seen < floor:
                stale.append((seen, floor))
            reads += 1
        return reads

    counts = await asyncio.gather(writer(), *(reader() for _ in range(8)))
    assert sum(c for c in counts if c) > 40
    assert stale == []
