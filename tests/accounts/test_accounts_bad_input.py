"""NUL characters in the accounts routes' text are 422 problem+json over HTTP and store nothing. A NUL
in a password would also be silently cut there by bcrypt, so "ab\\0c" would be "ab"."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from accounts_client import Api


def refused(reply: Any, field: str) -> bool:
    return (
        reply.status == 422
        and reply.headers["Content-Type"].startswith("application/problem+json")
        and reply.body["code"] == "validation_failed"
        and reply.body["errors"][0]["loc"] == [field]
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "Ada\u0000"), ("email", "a\u0000b@example.com"), ("password", "correct\u0000horse")],
)
async def test_registering_with_nul_is_422(api: Api, field: str, value: str) -> None:
    body = {
        "email": f"{uuid.uuid4().hex[:10]}@example.com",
        "password": "correct horse",
        "name": "Ada",
        "role": "student",
    }
    reply = await api.call("POST", "auth/register", {**body, field: value})
    assert refused(reply, field), reply.body
    assert (await api.login(body["email"], body["password"])).status == 401


async def test_nul_in_a_login_or_a_profile_change_is_422(api: Api) -> None:
    user = await api.register()
    assert refused(await api.login(user["email"], user["password"] + "\u0000"), "password")
    token = (await api.tokens(user))["access_token"]
    assert refused(await api.call("PATCH", "users/me", {"name": "\u0000"}, token=token), "name")
    assert refused(await api.call("POST", "auth/refresh", {"refresh_token": "x\u0000"}), "refresh_token")
    me = await api.call("GET", "users/me", token=token)
    assert me.body["name"] == user["name"]
