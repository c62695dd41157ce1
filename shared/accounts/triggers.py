"""Accounts routes: /api/auth/*, /api/users/me and /api/admin/users."""

from __future__ import annotations

from shared import resources
from shared.accounts import service
from shared.accounts.models import (
    AdminUserUpdate,
    Credentials,
    RefreshRequest,
    TokensPublic,
    UserCreate,
    UserPublic,
    UsersPublic,
    UsersQuery,
    UserUpdate,
)
from shared.accounts.service import AccountsContext
from shared.config import get_settings
from shared.http.auth import ANONYMOUS, AUTHENTICATED, roles
from shared.http.endpoint import ApiRequest, blueprint, endpoint

bp = blueprint()


async def _context() -> AccountsContext:
    return AccountsContext(
        database=await resources.get_database(),
        cache=await resources.get_cache(),
        hasher=await resources.get_password_hasher(),
        limiter=await resources.get_rate_limiter(),
        settings=get_settings(),
    )


@endpoint(bp, name="register", route="auth/register", method="POST", auth=ANONYMOUS, body=UserCreate, status=201)
async def register(request: ApiRequest[UserCreate]) -> UserPublic:
    assert request.body is not None
    return await service.register(await _context(), request.body, client_ip=request.client_ip)


@endpoint(bp, name="login", route="auth/login", method="POST", auth=ANONYMOUS, body=Credentials)
async def login(request: ApiRequest[Credentials]) -> TokensPublic:
    assert request.body is not None
    return await service.login(await _context(), request.body, client_ip=request.client_ip)


@endpoint(bp, name="refresh", route="auth/refresh", method="POST", auth=ANONYMOUS, body=RefreshRequest)
async def refresh(request: ApiRequest[RefreshRequest]) -> TokensPublic:
    assert request.body is not None
    return await service.refresh(await _context(), request.body.refresh_token)


@endpoint(bp, name="logout", route="auth/logout", method="POST", auth=ANONYMOUS, body=RefreshRequest, status=204)
async def logout(request: ApiRequest[RefreshRequest]) -> None:
    assert request.body is not None
    await service.logout(await _context(), request.body.refresh_token)


@endpoint(bp, name="get_me", route="users/me", method="GET", auth=AUTHENTICATED)
async def get_me(request: ApiRequest[None]) -> UserPublic:
    return await service.get_me(await _context(), request.user)


@endpoint(bp, name="update_user", route="users/me", method="PATCH", auth=AUTHENTICATED, body=UserUpdate)
async def update_me(request: ApiRequest[UserUpdate]) -> UserPublic:
    assert request.body is not None
    return await service.update_me(await _context(), request.user, request.body, client_ip=request.client_ip)


@endpoint(bp, name="delete_user", route="users/me", method="DELETE", auth=AUTHENTICATED, status=204)
async def delete_me(request: ApiRequest[None]) -> None:
    await service.delete_me(await _context(), request.user)


@endpoint(bp, name="admin_list_users", route="admin/users", method="GET", auth=roles("admin"))
async def list_users(request: ApiRequest[None]) -> UsersPublic:
    query = UsersQuery.model_validate(dict(request.query))
    return await service.list_users(await _context(), query)


@endpoint(
    bp, name="admin_update_user", route="admin/users/{id}", method="PATCH", auth=roles("admin"), body=AdminUserUpdate
)
async def admin_update_user(request: ApiRequest[AdminUserUpdate]) -> UserPublic:
    assert request.body is not None
    return await service.admin_update_user(await _context(), request.user, request.route_id(), request.body)
