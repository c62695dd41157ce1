"""Every route the app has, called as anonymous, student, mentor and admin: 401 / 403 / allowed.

The routes come from the app's own function table, so a new route without a row in ACCESS fails
here until someone decides who may call it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any

import pytest
from accounts_client import Api, new_ip

# function name -> who may call it: "anyone", "signed-in" (any role) or a set of roles
ACCESS: dict[str, str | frozenset[str]] = {
    "health": "anyone",
    "get_ui_config": "anyone",
    "register": "anyone",
    "login": "anyone",
    "refresh": "anyone",
    "logout": "anyone",
    "get_me": "signed-in",
    "update_user": "signed-in",
    "delete_user": "signed-in",
    "admin_list_users": frozenset({"admin"}),
    "admin_update_user": frozenset({"admin"}),
    "list_mentors": "anyone",
    "get_mentor": "anyone",
    "list_mentor_slots": "anyone",
    "create_mentor": frozenset({"mentor"}),
    "get_own_mentor": frozenset({"mentor"}),
    "update_mentor": frozenset({"mentor"}),
    "update_mentor_hourly_rate": frozenset({"mentor"}),
    "update_mentor_upi_id": frozenset({"mentor"}),
    "get_mentor_availability": frozenset({"mentor"}),
    "set_mentor_availability": frozenset({"mentor"}),
    "set_mentor_active": frozenset({"admin"}),
    "create_booking": frozenset({"student"}),
    "list_bookings": frozenset({"student", "mentor"}),
    "get_booking": "signed-in",
    "reschedule_booking": "signed-in",
    "cancel_booking": "signed-in",
    "update_booking_status": frozenset({"mentor", "admin"}),
    "create_review": frozenset({"student"}),
    "list_mentor_reviews": "anyone",
    "get_student_stats": frozenset({"student"}),
    "get_mentor_stats": frozenset({"mentor"}),
    "start_booking_payment": frozenset({"student"}),
    "get_booking_payment": frozenset({"student"}),
    "verify_razorpay_payment": frozenset({"student"}),
    # Authenticated by the provider's signature, not by a user
    "razorpay_webhook": "anyone",
    "stripe_webhook": "anyone",
}
CALLERS = ("anonymous", "student", "mentor", "admin")
AUTH_CODES = {"missing_token", "invalid_token", "forbidden"}


@cache  # the app validates its functions once; asking twice trips its duplicate check
def http_routes() -> list[tuple[str, str, str]]:
    from function_app import app

    routes = []
    for function in app.get_functions():
        trigger = function.get_trigger()
        if trigger.get_binding_name() == "httpTrigger":
            for method in trigger.methods:
                routes.append((function.get_function_name(), str(method.value), trigger.route))
    return sorted(routes)


def test_every_route_has_a_declared_access_rule() -> None:
    assert {name for name, _, _ in http_routes()} == set(ACCESS)


def expected(rule: str | frozenset[str], caller: str) -> int | None:
    """401 or 403 when `caller` must be turned away; None when the guard lets them through."""
    if rule == "anyone":
        return None
    if caller == "anonymous":
        return 401
    return None if rule == "signed-in" or caller in rule else 403


@pytest.mark.parametrize(("name", "method", "route"), http_routes())
async def test_the_guard_of(
    name: str, method: str, route: str, api: Api, make_admin: Callable[[Api], Awaitable[dict[str, Any]]]
) -> None:
    path = re.sub(r"\{id(:\w+)?\}", str(uuid.uuid4()), route)
    body = {} if method in ("POST", "PATCH", "PUT") else None
    for caller in CALLERS:
        caller_api = Api(api.http, api.base, new_ip())
        token = None
        if caller == "admin":
            token = (await make_admin(caller_api))["access_token"]
        elif caller != "anonymous":
            token = (await caller_api.tokens(await caller_api.register(role=caller)))["access_token"]
        reply = await caller_api.call(method, path, body, token=token)
        code = (reply.body or {}).get("code") if isinstance(reply.body, dict) else None
        outcome = expected(ACCESS[name], caller)
        if outcome is None:
            assert code not in AUTH_CODES, (caller, reply.status, reply.body)
        else:
            assert reply.status == outcome, (caller, reply.status, reply.body)
            assert code == ("missing_token" if outcome == 401 else "forbidden")
