"""Account use cases: register, log in, refresh, log out, profile, deletion and admin management."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared.accounts import repository
from shared.accounts.models import (
    AdminUserUpdate,
    Credentials,
    TokensPublic,
    UserCreate,
    UserPublic,
    UsersPublic,
    UsersQuery,
    UserUpdate,
)
from shared.accounts.repository import LoginRecord
from shared.auth.passwords import PasswordHasher
from shared.auth.principal import Principal
from shared.auth.tokens import hash_refresh_token, issue_access_token, new_refresh_token
from shared.cache.cache import Cache
from shared.cache.ratelimit import RateLimiter
from shared.config import Settings
from shared.db.database import Connection, Database
from shared.errors import Conflict, Forbidden, NotFound, TooManyRequests, Unauthenticated
from shared.http.cursor import Keyset
from shared.mentors import repository as mentors_repository
from shared.mentors.service import invalidate_mentor_list
from shared.models import BoundedDatetime

LOGIN_CACHE_TTL_S = 300
LOGIN_CACHE_VARIANT = "login"

# Admin user pages, newest first: the (created_at, id) of a page's last account.
USERS_CURSOR: Keyset[tuple[datetime, uuid.UUID]] = Keyset(tuple[BoundedDatetime, uuid.UUID])


class InvalidCredentials(Unauthenticated):
    code = "invalid_credentials"
    title = "The email or password is wrong"


class AccountDeactivated(Forbidden):
    code = "account_deactivated"
    title = "This account is deactivated"


class InvalidRefreshToken(Unauthenticated):
    code = "invalid_refresh_token"
    title = "The refresh token is invalid, expired or revoked"


class WrongCurrentPassword(Forbidden):
    code = "wrong_current_password"
    title = "The current password is wrong"


class LastAdmin(Conflict):
    code = "last_admin"
    title = "This change would leave no active admin"


class NotAnActiveAdmin(Forbidden):
    code = "not_an_active_admin"
    title = "The caller is no longer an active admin"


@dataclass(frozen=True)
class AccountsContext:
    """The collaborators every account use case needs."""

    database: Database
    cache: Cache
    hasher: PasswordHasher
    limiter: RateLimiter
    settings: Settings
    clock: Callable[[], float] = field(default=time.time)


def login_cache_key(email: str) -> str:
    """The cache namespace of one (normalised) email's login record, versioned per email: its
    generation `{user:email:<email>}:gen` is bumped after every committed change, so a record loaded
    before the change (in any process) is never read again (see shared/cache/generations.py)."""
    return f"user:email:{email}"


async def forget_login_records(ctx: AccountsContext, *emails: str) -> None:
    """Make the cached login records of `emails` unreachable everywhere; call after the commit."""
    await ctx.cache.bump(*(login_cache_key(email) for email in dict.fromkeys(emails)))


async def register(ctx: AccountsContext, new: UserCreate, *, client_ip: str) -> UserPublic:
    """Create a student or mentor account. The email is stored normalised; a taken email is 409."""
    window = ctx.settings.rate_limit_window_s
    await ctx.limiter.hit(f"rl:register:ip:{client_ip}", limit=ctx.settings.register_limit_per_ip, window_s=window)
    await ctx.limiter.hit(
        f"rl:register:email:{new.email}", limit=ctx.settings.register_limit_per_email, window_s=window
    )
    password_hash = await ctx.hasher.hash(new.password)
    async with ctx.database.transaction() as conn:
        user = await repository.insert_user(
            conn, email=new.email, name=new.name, role=new.role, password_hash=password_hash
        )
    await forget_login_records(ctx, new.email)  # a cached "no such account" must go
    return user


async def login(ctx: AccountsContext, credentials: Credentials, *, client_ip: str) -> TokensPublic:
    """Check the password and start a session (a new refresh-token family).

    Unknown emails and wrong passwords get the same answer after the same bcrypt work. Logins beyond
    the admitted share of bcrypt capacity are shed with 503 before anything else happens; the rest
    are rate-limited per email and per client IP before any hashing. A hash made at a lower cost
    than BCRYPT_COST is replaced by one at the current cost once the password is proven (the plain
    password exists only now).
    """
    await _admit_password_attempt(ctx, email=credentials.email, client_ip=client_ip)
    record = await _login_record(ctx, credentials.email)
    if not await ctx.hasher.check(credentials.password, record.password_hash if record else None):
        raise InvalidCredentials()
    assert record is not None and record.password_hash is not None  # a missing record never matches
    if record.status != "active":
        raise AccountDeactivated()
    new_hash = await ctx.hasher.upgraded_hash(credentials.password, record.password_hash)
    upgraded = False
    async with ctx.database.transaction() as conn:
        # The record may come from the cache: tokens are only issued if the account as committed now
        # (locked until this commits) still has the hash the password was checked against and is
        # active. Its current role and token version go into the tokens.
        current = await repository.lock_login_record(conn, record.id)
        usable = current is not None and current.password_hash == record.password_hash and current.status == "active"
        if usable:
            assert current is not None
            upgraded = new_hash is not None and await repository.upgrade_password_hash(
                conn, record.id, old_hash=record.password_hash, new_hash=new_hash
            )
            tokens = await _start_session(ctx, conn, current)
    if not usable or current != record or upgraded:
        await forget_login_records(ctx, credentials.email)
    if not usable:
        wrong_hash = current is None or current.password_hash != record.password_hash
        raise InvalidCredentials() if wrong_hash else AccountDeactivated()
    return tokens


async def _admit_password_attempt(ctx: AccountsContext, *, email: str, client_ip: str) -> None:
    """Admit one password guess (login or current_password) before any bcrypt work.

    Shed with 503 beyond the admitted share of bcrypt capacity before anything else happens, then
    rate-limited per email and per client IP: one budget whichever route the guess comes through.
    """
    ctx.hasher.admit_login()  # first, and with no I/O: a shed attempt costs no Redis or PostgreSQL trip
    window = ctx.settings.rate_limit_window_s
    try:
        await ctx.limiter.hit(f"rl:login:ip:{client_ip}", limit=ctx.settings.login_limit_per_ip, window_s=window)
        await ctx.limiter.hit(f"rl:login:email:{email}", limit=ctx.settings.login_limit_per_email, window_s=window)
    except TooManyRequests:
        ctx.hasher.refund_login()  # a rate-limited client must not use up other people's logins
        raise


async def refresh(ctx: AccountsContext, token: str) -> TokensPublic:
    """Rotate a refresh token: the presented one is spent and a new pair issued in the same family.

    Presenting a token that was already rotated means it leaked (or a client raced itself): the whole
    family is revoked, so neither the thief nor the owner can continue that session.
    """
    async with ctx.database.transaction() as conn:
        row = await repository.lock_refresh_token(conn, hash_refresh_token(token))
        if row is None or row.revoked_at is not None or row.expires_at <= _now(ctx):
            raise InvalidRefreshToken()
        tokens: TokensPublic | None = None
        if row.rotated_at is not None:
            await repository.revoke_family(conn, row.family_id)
        else:
            record = await repository.fetch_login_record_by_id(conn, row.user_id)
            if record is None or record.status != "active":
                raise InvalidRefreshToken()
            await repository.mark_rotated(conn, row.id)
            tokens = await _issue(ctx, conn, record, row.family_id)
    if tokens is None:  # raised after the commit, so that the revocation sticks
        raise InvalidRefreshToken("this refresh token was already used; the session has been revoked")
    return tokens


async def logout(ctx: AccountsContext, token: str) -> None:
    """End the session the refresh token belongs to (idempotent: unknown tokens are ignored)."""
    async with ctx.database.transaction() as conn:
        row = await repository.lock_refresh_token(conn, hash_refresh_token(token))
        if row is not None:
            await repository.revoke_family(conn, row.family_id)


async def get_me(ctx: AccountsContext, principal: Principal) -> UserPublic:
    """The caller's account."""
    async with ctx.database.connection() as conn:
        user = await repository.fetch_user(conn, principal.user_id)
    if user is None:
        raise NotFound("the account no longer exists")
    return user


async def update_me(ctx: AccountsContext, principal: Principal, changes: UserUpdate, *, client_ip: str) -> UserPublic:
    """Change the caller's name, email or password.

    Email and password changes need the current password, which is a password guess like a login:
    it is shed and rate-limited with the same budgets (per email and per client IP). A password
    change revokes every other session's refresh tokens; the caller's own session continues.
    """
    async with ctx.database.connection() as conn:
        record = await repository.fetch_login_record_by_id(conn, principal.user_id)
        current_user = await repository.fetch_user(conn, principal.user_id)
    if record is None or current_user is None:
        raise NotFound("the account no longer exists")
    if changes.current_password is not None:
        await _admit_password_attempt(ctx, email=current_user.email, client_ip=client_ip)
        if not await ctx.hasher.check(changes.current_password, record.password_hash):
            raise WrongCurrentPassword()
    new_hash = await ctx.hasher.hash(changes.password) if changes.password is not None else None
    async with ctx.database.transaction() as conn:
        before = await repository.fetch_user(conn, principal.user_id)
        user = await repository.update_profile(
            conn, principal.user_id, name=changes.name, email=changes.email, password_hash=new_hash
        )
        if user is None or before is None:
            raise NotFound("the account no longer exists")
        if new_hash is not None:
            await repository.revoke_user_tokens(conn, principal.user_id, keep_family=principal.session_id)
        listed_name_changed = user.name != before.name and await mentors_repository.has_profile(conn, user.id)
    await forget_login_records(ctx, before.email, user.email)
    if listed_name_changed:  # discovery shows the account's name
        await invalidate_mentor_list(ctx.cache)
    return user


async def delete_me(ctx: AccountsContext, principal: Principal) -> None:
    """Delete the caller's account: anonymise it and revoke its tokens, keeping the row for audit."""
    async with ctx.database.transaction() as conn:
        admins = await repository.lock_active_admins(conn)
        if admins == {principal.user_id}:
            raise LastAdmin("the last active admin cannot delete their account; make another admin first")
        old_email = await repository.anonymise(conn, principal.user_id)
        await repository.revoke_user_tokens(conn, principal.user_id)
        mentor = old_email is not None and await mentors_repository.has_profile(conn, principal.user_id)
    if old_email is not None:
        await forget_login_records(ctx, old_email)
    if mentor:  # discovery lists only active accounts
        await invalidate_mentor_list(ctx.cache)


async def list_users(ctx: AccountsContext, query: UsersQuery) -> UsersPublic:
    """A page of accounts, newest first, optionally filtered by role and status."""
    after = USERS_CURSOR.decode(query.cursor) if query.cursor else None
    async with ctx.database.connection() as conn:
        users = await repository.list_users(
            conn, role=query.role, status=query.status, after=after, limit=query.limit + 1
        )
    page = users[: query.limit]
    next_cursor = USERS_CURSOR.encode((page[-1].created_at, page[-1].id)) if len(users) > query.limit else None
    return UsersPublic(data=page, next_cursor=next_cursor)


async def admin_update_user(
    ctx: AccountsContext, admin: Principal, user_id: uuid.UUID, changes: AdminUserUpdate
) -> UserPublic:
    """Deactivate, reactivate or change the role of an account.

    Deactivation and role changes stop the account's existing access tokens on their next use, and
    deactivation revokes its refresh tokens. Admins cannot deactivate or demote themselves, and no
    change may leave the system without an active admin: admin changes run one at a time (under a
    lock on the active admins' rows), each by an admin who is still active when it runs, so two
    admins deactivating each other at once cannot both succeed.
    """
    removes_admin = changes.status == "deactivated" or changes.role not in (None, "admin")
    if user_id == admin.user_id and removes_admin:
        raise Conflict("admins cannot deactivate or demote themselves")
    async with ctx.database.transaction() as conn:
        admins = await repository.lock_active_admins(conn)
        if admin.user_id not in admins:
            raise NotAnActiveAdmin("your account was deactivated or demoted meanwhile")
        if removes_admin and admins == {user_id}:
            raise LastAdmin()
        user = await repository.admin_update(conn, user_id, status=changes.status, role=changes.role)
        if user is None:
            raise NotFound("no such account")
        if changes.status == "deactivated":
            await repository.revoke_user_tokens(conn, user_id)
        mentor = await mentors_repository.has_profile(conn, user_id)
    await forget_login_records(ctx, user.email)
    if mentor:  # discovery lists only active accounts with the mentor role
        await invalidate_mentor_list(ctx.cache)
    return user


async def create_admin(ctx: AccountsContext, *, email: str, name: str, password: str) -> UserPublic:
    """Create an admin account (only from the command line, never through the API)."""
    password_hash = await ctx.hasher.hash(password)
    async with ctx.database.transaction() as conn:
        user = await repository.insert_user(conn, email=email, name=name, role="admin", password_hash=password_hash)
    await forget_login_records(ctx, email)
    return user


async def _login_record(ctx: AccountsContext, email: str) -> LoginRecord | None:
    async def load() -> LoginRecord | None:
        async with ctx.database.connection() as conn:
            return await repository.fetch_login_record(conn, email)

    return await cached_login_record(ctx.cache, email, load)


async def cached_login_record(
    cache: Cache, email: str, load: Callable[[], Awaitable[LoginRecord | None]]
) -> LoginRecord | None:
    """The login record of `email` through the cache, `load`ing it on a miss (any process does this)."""

    async def load_json() -> bytes:
        return json.dumps(repository.as_json(await load())).encode()

    # public=False: per-user values are never served from the in-process copy.
    cached = await cache.get_or_load_versioned(
        login_cache_key(email), LOGIN_CACHE_VARIANT, LOGIN_CACHE_TTL_S, load_json, public=False
    )
    return repository.from_json(json.loads(cached))


async def _start_session(ctx: AccountsContext, conn: Connection, record: LoginRecord) -> TokensPublic:
    return await _issue(ctx, conn, record, uuid.uuid4())


async def _issue(ctx: AccountsContext, conn: Connection, record: LoginRecord, family_id: uuid.UUID) -> TokensPublic:
    refresh_token, token_hash = new_refresh_token()
    expires_at = _now(ctx) + timedelta(seconds=ctx.settings.refresh_token_ttl_s)
    await repository.insert_refresh_token(
        conn, user_id=record.id, family_id=family_id, token_hash=token_hash, expires_at=expires_at
    )
    ttl_s = ctx.settings.access_token_ttl_s
    access_token = issue_access_token(
        ctx.settings.signing_key(),
        user_id=record.id,
        role=record.role,
        version=record.auth_version,
        session_id=family_id,
        now=int(ctx.clock()),
        ttl_s=ttl_s,
    )
    return TokensPublic(access_token=access_token, refresh_token=refresh_token, expires_in=ttl_s)


def _now(ctx: AccountsContext) -> datetime:
    return datetime.fromtimestamp(ctx.clock(), UTC)
