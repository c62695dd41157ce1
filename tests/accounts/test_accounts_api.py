"""Every accounts endpoint's success and failure paths, over real HTTP against PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from accounts_client import Api, new_ip
from forged_cursor import with_instant

from shared.accounts import repository, service
from shared.auth.tokens import issue_access_token
from shared.cache.breaker import CircuitBreaker
from shared.cache.cache import Cache
from shared.config import get_settings


def problem(reply: Any, status: int, code: str) -> None:
    assert reply.status == status, reply.body
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert reply.body["code"] == code


# register ------------------------------------------------------------------------------------------


async def test_register_normalises_the_email_and_never_returns_the_hash(api: Api) -> None:
    user = await api.register(role="mentor", email="  Ana.Mentor+x@Example.COM ")
    assert user["email"] == "ana.mentor+x@example.com"
    assert (user["role"], user["status"], user["name"]) == ("mentor", "active", "Test User")
    assert "password_hash" not in user and "password" not in {k for k in user if k != "password"}


async def test_a_duplicate_email_is_409_whatever_its_case(api: Api) -> None:
    user = await api.register()
    reply = await api.call(
        "POST",
        "auth/register",
        {"email": user["email"].upper(), "password": "another pw", "name": "X", "role": "student"},
    )
    problem(reply, 409, "email_taken")


async def test_admins_cannot_be_registered_through_the_api(api: Api) -> None:
    body = {"email": "boss@example.com", "password": "long enough", "name": "Boss", "role": "admin"}
    reply = await api.call("POST", "auth/register", body)
    problem(reply, 422, "validation_failed")
    assert reply.body["errors"] == [{"loc": ["role"], "type": "literal_error"}]


async def test_passwords_over_72_bytes_are_refused_not_truncated(api: Api) -> None:
    long = "é" * 37  # 74 bytes in UTF-8, 37 characters
    body = {"email": "long@example.com", "password": long, "name": "L", "role": "student"}
    reply = await api.call("POST", "auth/register", body)
    problem(reply, 422, "validation_failed")
    assert reply.body["errors"] == [{"loc": ["password"], "type": "password_too_long"}]
    user = await api.register(password="x" * 72)  # exactly the limit is fine
    problem(await api.login(user["email"], "x" * 72 + "y"), 422, "validation_failed")


async def test_bad_register_bodies_are_problem_json(api: Api) -> None:
    for body in (
        {"email": "not-an-email", "password": "long enough", "name": "A", "role": "student"},
        {"email": "a@example.com", "password": "short", "name": "A", "role": "student"},
        {"email": "a@example.com", "password": "long enough", "name": " ", "role": "student"},
        {"email": "a@example.com", "password": "long enough", "name": "A", "role": "student", "extra": 1},
        ["not", "an", "object"],
    ):
        problem(await api.call("POST", "auth/register", body), 422, "validation_failed")


# login ---------------------------------------------------------------------------------------------


async def test_login_returns_a_signed_access_token_and_an_opaque_refresh_token(api: Api) -> None:
    user = await api.register()
    tokens = await api.tokens({**user, "email": user["email"].upper()})
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == get_settings().access_token_ttl_s
    assert tokens["access_token"].count(".") == 2 and "." not in tokens["refresh_token"]
    me = await api.call("GET", "users/me", token=tokens["access_token"])
    assert me.status == 200
    assert me.body["id"] == user["id"]


async def test_unknown_email_and_wrong_password_get_the_same_answer(api: Api) -> None:
    user = await api.register()
    wrong = await api.login(user["email"], "wrong password")
    unknown = await api.login(f"nobody-{uuid.uuid4().hex}@example.com", "wrong password")
    problem(wrong, 401, "invalid_credentials")
    assert {k: v for k, v in wrong.body.items() if k != "instance"} == {
        k: v for k, v in unknown.body.items() if k != "instance"
    }


# refresh and logout --------------------------------------------------------------------------------


async def test_refresh_rotates_the_token_and_reuse_revokes_the_family(api: Api) -> None:
    user = await api.register()
    first = await api.tokens(user)
    second = await api.call("POST", "auth/refresh", {"refresh_token": first["refresh_token"]})
    assert second.status == 200
    assert second.body["refresh_token"] != first["refresh_token"]
    third = await api.call("POST", "auth/refresh", {"refresh_token": second.body["refresh_token"]})
    assert third.status == 200
    # the first token is replayed: the whole family (including the newest token) is revoked
    problem(
        await api.call("POST", "auth/refresh", {"refresh_token": first["refresh_token"]}), 401, "invalid_refresh_token"
    )
    problem(
        await api.call("POST", "auth/refresh", {"refresh_token": third.body["refresh_token"]}),
        401,
        "invalid_refresh_token",
    )
    # another session of the same user is untouched
    other = await api.tokens(user)
    assert (await api.call("POST", "auth/refresh", {"refresh_token": other["refresh_token"]})).status == 200


async def test_unknown_and_expired_refresh_tokens_are_401(api: Api, app_host: Any) -> None:
    problem(await api.call("POST", "auth/refresh", {"refresh_token": "nope"}), 401, "invalid_refresh_token")
    user = await api.register()
    tokens = await api.tokens(user)
    from shared import resources
    from shared.auth.tokens import hash_refresh_token

    async def expire() -> None:
        async with (await resources.get_database()).connection() as conn:
            await conn.execute(
                "UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1",
                hash_refresh_token(tokens["refresh_token"]),
            )

    app_host.call(expire())
    problem(
        await api.call("POST", "auth/refresh", {"refresh_token": tokens["refresh_token"]}), 401, "invalid_refresh_token"
    )


async def test_logout_revokes_the_session(api: Api) -> None:
    user = await api.register()
    tokens = await api.tokens(user)
    assert (await api.call("POST", "auth/logout", {"refresh_token": tokens["refresh_token"]})).status == 204
    assert (await api.call("POST", "auth/logout", {"refresh_token": tokens["refresh_token"]})).status == 204
    problem(
        await api.call("POST", "auth/refresh", {"refresh_token": tokens["refresh_token"]}), 401, "invalid_refresh_token"
    )
    problem(await api.call("POST", "auth/logout", {}), 422, "validation_failed")


# access tokens -------------------------------------------------------------------------------------


async def test_expired_forged_and_malformed_access_tokens_are_401_with_www_authenticate(api: Api) -> None:
    user = await api.register()
    tokens = await api.tokens(user)
    settings = get_settings()
    claims = {"user_id": uuid.UUID(user["id"]), "role": "student", "version": 1, "session_id": uuid.uuid4()}
    expired = issue_access_token(settings.signing_key(), now=int(time.time()) - 3600, ttl_s=60, **claims)
    forged = issue_access_token("x" * 32 + "another key entirely", now=int(time.time()), ttl_s=60, **claims)
    header, payload, _ = tokens["access_token"].split(".")
    for token in (expired, forged, f"{header}.{payload}.", "garbage"):
        reply = await api.call("GET", "users/me", token=token)
        problem(reply, 401, "invalid_token")
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    reply = await api.call("GET", "users/me")
    problem(reply, 401, "missing_token")
    assert reply.headers["WWW-Authenticate"] == 'Bearer realm="codeconnect"'


# users/me ------------------------------------------------------------------------------------------


async def test_update_name_and_email_and_the_cache_follows(api: Api, redis_url: str) -> None:
    user = await api.register()
    tokens = await api.tokens(user)
    old_generation = f"{{user:email:{user['email']}}}:gen"  # the login record's key is versioned per email
    client = aioredis.Redis.from_url(redis_url)
    try:
        cached_under = await client.get(old_generation)
        assert await client.exists(f"{{user:email:{user['email']}}}:g{cached_under.decode()}:login") == 1
        new_email = f"new-{uuid.uuid4().hex[:8]}@example.com"
        problem(
            await api.call("PATCH", "users/me", {"email": new_email}, token=tokens["access_token"]),
            422,
            "validation_failed",
        )
        reply = await api.call(
            "PATCH",
            "users/me",
            {"name": "Renamed", "email": new_email, "current_password": user["password"]},
            token=tokens["access_token"],
        )
        assert reply.status == 200, reply.body
        assert (reply.body["name"], reply.body["email"]) == ("Renamed", new_email)
        assert await client.get(old_generation) != cached_under  # bumped: that record is never read again
    finally:
        await client.aclose()
    problem(await api.login(user["email"], user["password"]), 401, "invalid_credentials")
    assert (await api.login(new_email, user["password"])).status == 200


async def test_a_changed_password_takes_effect_on_the_very_next_login(api: Api) -> None:
    user = await api.register()
    this_session = await api.tokens(user)
    other_session = await api.tokens(user)  # also warms user:email:{email}
    token = this_session["access_token"]
    problem(
        await api.call("PATCH", "users/me", {"password": "new password", "current_password": "wrong"}, token=token),
        403,
        "wrong_current_password",
    )
    reply = await api.call(
        "PATCH", "users/me", {"password": "new password", "current_password": user["password"]}, token=token
    )
    assert reply.status == 200
    problem(await api.login(user["email"], user["password"]), 401, "invalid_credentials")
    assert (await api.login(user["email"], "new password")).status == 200
    # other sessions' refresh tokens are revoked; this session continues
    problem(
        await api.call("POST", "auth/refresh", {"refresh_token": other_session["refresh_token"]}),
        401,
        "invalid_refresh_token",
    )
    assert (await api.call("POST", "auth/refresh", {"refresh_token": this_session["refresh_token"]})).status == 200


async def test_update_to_a_taken_email_is_409_and_empty_updates_are_422(api: Api) -> None:
    taken = await api.register()
    user = await api.register()
    token = (await api.tokens(user))["access_token"]
    body = {"email": taken["email"], "current_password": user["password"]}
    problem(await api.call("PATCH", "users/me", body, token=token), 409, "email_taken")
    problem(await api.call("PATCH", "users/me", {}, token=token), 422, "validation_failed")


async def test_delete_anonymises_the_account_and_revokes_its_tokens(api: Api, app_host: Any) -> None:
    user = await api.register()
    tokens = await api.tokens(user)
    assert (await api.call("DELETE", "users/me", token=tokens["access_token"])).status == 204
    problem(await api.call("GET", "users/me", token=tokens["access_token"]), 401, "invalid_token")
    problem(
        await api.call("POST", "auth/refresh", {"refresh_token": tokens["refresh_token"]}), 401, "invalid_refresh_token"
    )
    problem(await api.login(user["email"], user["password"]), 401, "invalid_credentials")
    from shared import resources

    async def row() -> Any:
        async with (await resources.get_database()).connection() as conn:
            return await conn.fetchrow(
                "SELECT email, name, status, password_hash FROM users WHERE id = $1", uuid.UUID(user["id"])
            )

    kept = app_host.call(row())
    assert kept is not None  # kept for the audit of bookings and payments
    assert (kept["name"], kept["status"], kept["password_hash"]) == ("Deleted user", "deleted", None)
    assert user["email"] not in kept["email"]
    again = await api.register(email=user["email"])  # the address is free again
    assert again["id"] != user["id"]


# admin ---------------------------------------------------------------------------------------------


async def test_admin_lists_users_filtered_with_cursor_pagination(api: Api, admin: dict[str, Any]) -> None:
    mentors = [await api.register(role="mentor") for _ in range(3)]
    token = admin["access_token"]
    seen: list[str] = []
    cursor = None
    while True:
        query = "admin/users?role=mentor&status=active&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = await api.call("GET", query, token=token)
        assert page.status == 200, page.body
        assert all(u["role"] == "mentor" for u in page.body["data"])
        seen += [u["id"] for u in page.body["data"]]
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert {m["id"] for m in mentors} <= set(seen)
    for bad in ("limit=0", "role=king", "unknown=1"):
        problem(await api.call("GET", f"admin/users?{bad}", token=token), 422, "validation_failed")
    first = await api.call("GET", "admin/users?limit=1", token=token)
    forged = with_instant(first.body["next_cursor"], "0001-01-01T00:00:00+05:00")
    for cursor in ("%21%21", forged):  # the one error of every paged list for a cursor it did not issue
        problem(await api.call("GET", f"admin/users?cursor={cursor}", token=token), 422, "invalid_cursor")


async def test_deactivation_takes_effect_on_the_very_next_request(api: Api, admin: dict[str, Any]) -> None:
    user = await api.register()
    tokens = await api.tokens(user)  # login cached the account as active
    token = admin["access_token"]
    reply = await api.call("PATCH", f"admin/users/{user['id']}", {"status": "deactivated"}, token=token)
    assert (reply.status, reply.body["status"]) == (200, "deactivated")
    problem(await api.call("GET", "users/me", token=tokens["access_token"]), 401, "invalid_token")
    problem(await api.login(user["email"], user["password"]), 403, "account_deactivated")
    problem(
        await api.call("POST", "auth/refresh", {"refresh_token": tokens["refresh_token"]}), 401, "invalid_refresh_token"
    )
    reply = await api.call("PATCH", f"admin/users/{user['id']}", {"status": "active"}, token=token)
    assert reply.status == 200
    problem(await api.call("GET", "users/me", token=tokens["access_token"]), 401, "invalid_token")  # still dead
    assert (await api.login(user["email"], user["password"])).status == 200


async def test_admin_role_change_applies_to_new_tokens_only(api: Api, admin: dict[str, Any]) -> None:
    user = await api.register()
    old = await api.tokens(user)
    reply = await api.call("PATCH", f"admin/users/{user['id']}", {"role": "mentor"}, token=admin["access_token"])
    assert reply.body["role"] == "mentor"
    problem(await api.call("GET", "users/me", token=old["access_token"]), 401, "invalid_token")
    fresh = await api.tokens(user)
    assert (await api.call("GET", "users/me", token=fresh["access_token"])).body["role"] == "mentor"


async def test_admin_update_failures(api: Api, admin: dict[str, Any]) -> None:
    token = admin["access_token"]
    problem(await api.call("PATCH", f"admin/users/{uuid.uuid4()}", {"status": "active"}, token=token), 404, "not_found")
    problem(await api.call("PATCH", "admin/users/not-a-uuid", {"status": "active"}, token=token), 404, "not_found")
    problem(
        await api.call("PATCH", f"admin/users/{admin['id']}", {"status": "deactivated"}, token=token), 409, "conflict"
    )
    problem(await api.call("PATCH", f"admin/users/{admin['id']}", {"role": "student"}, token=token), 409, "conflict")
    problem(
        await api.call("PATCH", f"admin/users/{admin['id']}", {"status": "deleted"}, token=token),
        422,
        "validation_failed",
    )
    problem(await api.call("PATCH", f"admin/users/{admin['id']}", {}, token=token), 422, "validation_failed")


# rate limits ---------------------------------------------------------------------------------------


async def test_login_is_rate_limited_per_email(api: Api) -> None:
    user = await api.register()
    limit = get_settings().login_limit_per_email
    replies = [
        await api.call("POST", "auth/login", {"email": user["email"], "password": "wrong"}, ip=new_ip())
        for _ in range(limit)
    ]
    assert {r.status for r in replies} == {401}
    blocked = await api.login(user["email"], user["password"])  # even the right password, from any IP
    problem(blocked, 429, "rate_limited")
    assert 0 < int(blocked.headers["Retry-After"]) <= get_settings().rate_limit_window_s


async def test_login_is_rate_limited_per_client_ip(api: Api) -> None:
    limit = get_settings().login_limit_per_ip
    # sequential: a concurrent burst this size would also meet the bcrypt admission (503), tested elsewhere
    replies = [await api.login(f"ip-{i}-{uuid.uuid4().hex[:6]}@example.com", "whatever") for i in range(limit + 1)]
    assert [r.status for r in replies] == [401] * limit + [429]
    user = await api.register()
    assert (
        await api.call("POST", "auth/login", {"email": user["email"], "password": user["password"]}, ip=new_ip())
    ).status == 200


async def test_register_is_rate_limited_per_client_ip(api: Api) -> None:
    limit = get_settings().register_limit_per_ip
    for _ in range(limit):
        await api.register()
    body = {"email": "one-more@example.com", "password": "long enough", "name": "X", "role": "student"}
    reply = await api.call("POST", "auth/register", body)
    problem(reply, 429, "rate_limited")
    assert int(reply.headers["Retry-After"]) > 0


# the login cache across processes -----------------------------------------------------------------


class _SlowDatabase:
    """The app's PostgreSQL, reached by 'another worker process' whose read returns only once released."""

    def __init__(self, conn: asyncpg.Connection[Any]) -> None:
        self.conn = conn
        self.read_done, self.release = asyncio.Event(), asyncio.Event()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection[Any]]:
        yield self.conn
        self.read_done.set()
        await self.release.wait()


def _other_process(database: Any, redis_url: str) -> tuple[service.AccountsContext, aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)

    async def redis() -> aioredis.Redis:
        return client

    cache = Cache(redis, CircuitBreaker(cooldown_s=2))
    settings = get_settings()
    ctx = service.AccountsContext(database=database, cache=cache, hasher=None, limiter=None, settings=settings)  # type: ignore[arg-type]
    return ctx, client


async def test_a_login_record_another_process_read_before_a_password_change_is_never_used(
    api: Api, db: asyncpg.Connection[Any], redis_url: str
) -> None:
    user = await api.register()
    token = (await api.tokens(user))["access_token"]
    slow = _SlowDatabase(db)
    other, client = _other_process(slow, redis_url)
    renamed = await api.call("PATCH", "users/me", {"name": "Renamed"}, token=token)  # drops the cached record
    assert renamed.status == 200
    try:
        # Another process misses the cache and reads the account just before the password changes...
        loading = asyncio.create_task(service._login_record(other, user["email"]))
        await asyncio.wait_for(slow.read_done.wait(), 10)
        body = {"password": "brand new pw", "current_password": user["password"]}
        assert (await api.call("PATCH", "users/me", body, token=token)).status == 200
        slow.release.set()  # ...and stores what it read only after the change was acknowledged.
        await asyncio.wait_for(loading, 10)
    finally:
        await client.aclose()
    problem(await api.login(user["email"], user["password"]), 401, "invalid_credentials")
    assert (await api.login(user["email"], "brand new pw")).status == 200


async def test_no_stale_cached_record_ever_mints_tokens(api: Api, db: asyncpg.Connection[Any], redis_url: str) -> None:
    user = await api.register()
    token = (await api.tokens(user))["access_token"]
    stale = await repository.fetch_login_record(db, user["email"])
    body = {"password": "brand new pw", "current_password": user["password"]}
    assert (await api.call("PATCH", "users/me", body, token=token)).status == 200
    other, client = _other_process(None, redis_url)

    async def before_the_change() -> repository.LoginRecord | None:
        return stale

    try:  # whatever way a pre-change record got into the cache (a lost invalidation, say)
        assert await service.cached_login_record(other.cache, user["email"], before_the_change) == stale
    finally:
        await client.aclose()
    problem(await api.login(user["email"], user["password"]), 401, "invalid_credentials")
    assert (await api.login(user["email"], "brand new pw")).status == 200  # and the cache was corrected


# deleted accounts ----------------------------------------------------------------------------------


async def test_the_anonymised_email_cannot_be_squatted(api: Api, db: asyncpg.Connection[Any]) -> None:
    victim = await api.register(role="mentor")
    for email in (f"deleted-{victim['id']}@deleted.invalid", "someone@example.invalid"):
        squat = await api.call(
            "POST", "auth/register", {"email": email, "password": "correct horse", "name": "S", "role": "student"}
        )
        problem(squat, 422, "validation_failed")
    token = (await api.tokens(victim))["access_token"]
    body = {"email": "me@example.invalid", "current_password": victim["password"]}
    problem(await api.call("PATCH", "users/me", body, token=token), 422, "validation_failed")
    assert (await api.call("DELETE", "users/me", token=token)).status == 204
    problem(await api.login(victim["email"], victim["password"]), 401, "invalid_credentials")


async def test_a_taken_anonymised_email_is_a_problem_never_a_500(api: Api, db: asyncpg.Connection[Any]) -> None:
    victim = await api.register()
    for squatted in (f"deleted-{victim['id']}", f"deleted-{victim['id']}@deleted.invalid"):  # new and old form
        await db.execute(
            "INSERT INTO users (email, name, role, password_hash) VALUES ($1, 'S', 'student', 'x')", squatted
        )
    token = (await api.tokens(victim))["access_token"]
    problem(await api.call("DELETE", "users/me", token=token), 409, "email_taken")


# admins --------------------------------------------------------------------------------------------


async def test_two_admins_deactivating_each_other_at_once_leave_one_admin(
    api: Api, make_admin: Callable[[Api], Awaitable[dict[str, Any]]], db: asyncpg.Connection[Any]
) -> None:
    for _ in range(4):
        a, b = await make_admin(api), await make_admin(api)
        replies = await asyncio.gather(
            api.call("PATCH", f"admin/users/{b['id']}", {"status": "deactivated"}, token=a["access_token"]),
            api.call("PATCH", f"admin/users/{a['id']}", {"status": "deactivated"}, token=b["access_token"]),
        )
        statuses = sorted(r.status for r in replies)
        assert statuses[0] == 200 and statuses[1] in (401, 403), [r.body for r in replies]
        active = await db.fetchval(
            "SELECT count(*) FROM users WHERE id = ANY($1::uuid[]) AND status = 'active'", [a["id"], b["id"]]
        )
        assert active == 1


@contextlib.asynccontextmanager
async def _sole_active_admin(db: asyncpg.Connection[Any], admin_id: str) -> AsyncIterator[None]:
    """Other tests' admins are deactivated for the duration (the tests of a session share a database)."""
    others = await db.fetch(
        "UPDATE users SET status = 'deactivated' WHERE role = 'admin' AND status = 'active' AND id <> $1 RETURNING id",
        uuid.UUID(admin_id),
    )
    try:
        yield
    finally:
        await db.execute("UPDATE users SET status = 'active' WHERE id = ANY($1::uuid[])", [r["id"] for r in others])


async def test_the_last_active_admin_cannot_delete_their_account(
    api: Api, make_admin: Callable[[Api], Awaitable[dict[str, Any]]], db: asyncpg.Connection[Any]
) -> None:
    admin = await make_admin(api)
    async with _sole_active_admin(db, admin["id"]):
        problem(await api.call("DELETE", "users/me", token=admin["access_token"]), 409, "last_admin")
        assert (await api.call("GET", "users/me", token=admin["access_token"])).status == 200
    other = await make_admin(api)  # with another active admin, an admin may leave
    assert (await api.call("DELETE", "users/me", token=other["access_token"])).status == 204


# passwords guessed through PATCH /users/me --------------------------------------------------------


async def test_current_password_guesses_share_the_login_rate_limit(api: Api) -> None:
    user = await api.register()
    token = (await api.tokens(user))["access_token"]
    limit = get_settings().login_limit_per_email
    guesses = [
        await api.call("PATCH", "users/me", {"name": "X", "current_password": f"guess {i}"}, token=token, ip=new_ip())
        for i in range(limit - 1)  # the login above counted once
    ]
    assert {r.status for r in guesses} == {403}
    blocked = await api.call("PATCH", "users/me", {"name": "X", "current_password": user["password"]}, token=token)
    problem(blocked, 429, "rate_limited")
    assert 0 < int(blocked.headers["Retry-After"]) <= get_settings().rate_limit_window_s
    problem(await api.login(user["email"], user["password"]), 429, "rate_limited")  # one budget for both


# email normalisation -------------------------------------------------------------------------------


async def test_one_address_however_it_is_written(api: Api) -> None:
    local = uuid.uuid4().hex[:8]
    composed = await api.register(email=f"\u00e9{local}@example.com")
    problem(await api.call("POST", "auth/register", _new(f"E\u0301{local}@example.com")), 409, "email_taken")
    assert (await api.login(f"e\u0301{local}@EXAMPLE.com", composed["password"])).status == 200

    idn = await api.register(email=f"{local}@b\u00fccher.de")
    assert idn["email"] == f"{local}@xn--bcher-kva.de"
    problem(await api.call("POST", "auth/register", _new(f"{local}@xn--bcher-kva.de")), 409, "email_taken")
    assert (await api.login(f"{local}@xn--bcher-kva.de", idn["password"])).status == 200

    for invisible in ("\u200b", "\u200d", "\u2060", "\u00ad", "\u202e", "\u0007"):
        reply = await api.call("POST", "auth/register", _new(f"{local}{invisible}@example.com"))
        problem(reply, 422, "validation_failed")
        problem(await api.login(f"{local}@example.com{invisible}", "whatever"), 422, "validation_failed")


def _new(email: str) -> dict[str, str]:
    return {"email": email, "password": "correct horse", "name": "N", "role": "student"}
