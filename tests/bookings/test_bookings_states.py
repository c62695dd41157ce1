"""The booking state machine: the whole from x to table, purely and through PATCH .../status as an
admin, and the payment orchestration's confirm/expire (idempotent, state-machine checked)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from bookings_helpers import Client, MakeMentor, MakeUser, is_problem, seed_booking, slot

from shared.bookings import service
from shared.bookings.states import (
    STATUSES,
    InvalidTransition,
    TransitionNotAllowed,
    check_transition,
    is_terminal,
)
from shared.cache.cache import Cache
from shared.db.database import Database

# Written out by hand (not derived from the code): who may make each allowed transition.
EXPECTED = {
    ("pending_payment", "confirmed"): {"system", "admin"},
    ("pending_payment", "expired"): {"system", "admin"},
    ("pending_payment", "cancelled"): {"student", "mentor", "admin"},
    ("confirmed", "completed"): {"mentor", "admin"},
    ("confirmed", "no_show"): {"mentor", "admin"},
    ("confirmed", "cancelled"): {"student", "mentor", "admin"},
}
ACTORS = ("student", "mentor", "admin", "system")


@pytest.mark.parametrize(("current", "target"), list(itertools.product(STATUSES, STATUSES)))
def test_every_pair_of_statuses_for_every_actor(current: str, target: str) -> None:
    for actor in ACTORS:
        allowed = EXPECTED.get((current, target))
        if allowed is None:
            with pytest.raises(InvalidTransition) as raised:
                check_transition(current, target, actor)
            assert raised.value.status == 409 and raised.value.code == "invalid_transition"
            assert raised.value.extra == {"from": current, "to": target}
        elif actor in allowed:
            check_transition(current, target, actor)
        else:
            with pytest.raises(TransitionNotAllowed) as refused:
                check_transition(current, target, actor)
            assert refused.value.status == 403


def test_the_terminal_statuses() -> None:
    assert {s for s in STATUSES if is_terminal(s)} == {"completed", "cancelled", "expired", "no_show"}


async def test_the_whole_table_through_the_status_route_as_an_admin(
    api: Client, db: asyncpg.Connection, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    admin, mentor = await make_user("admin"), await make_mentor()
    for index, (current, target) in enumerate(itertools.product(STATUSES, STATUSES)):
        student = await make_user("student")
        start = slot(2, 8) + timedelta(hours=index)
        booking_id = await seed_booking(db, student=student, mentor=mentor, start=start, status=current)
        body: dict[str, str] = {"status": target}
        if target == "no_show":
            body["no_show_party"] = "mentor"
        if target == "cancelled":
            body["reason"] = "admin decision"
        reply = await api.call("PATCH", f"bookings/{booking_id}/status", body, user=admin)
        if (current, target) in EXPECTED:
            assert reply.status == 200, (current, target, reply.body)
            assert reply.body["status"] == target
        else:
            assert is_problem(reply, 409, "invalid_transition"), (current, target, reply.body)
            assert (reply.body["from"], reply.body["to"]) == (current, target)
        stored = await db.fetchval("SELECT status FROM bookings WHERE id = $1", booking_id)
        assert stored == (target if (current, target) in EXPECTED else current)


async def test_confirm_and_expire_are_idempotent_and_checked(
    db: asyncpg.Connection, app_database: Database, app_cache: Cache, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    student, mentor = await make_user("student"), await make_mentor()
    now = datetime.now(UTC)
    paid = await seed_booking(db, student=student, mentor=mentor, start=slot(3, 9), status="pending_payment")
    confirmed = await service.confirm_booking(app_database, app_cache, paid, now=now)
    again = await service.confirm_booking(app_database, app_cache, paid, now=now + timedelta(seconds=5))
    assert confirmed.status == again.status == "confirmed"
    assert again.updated_at == confirmed.updated_at  # the retry changed nothing
    assert again.confirmed_at == confirmed.confirmed_at == now
    with pytest.raises(InvalidTransition):
        await service.expire_booking(app_database, app_cache, paid, now=now)

    unpaid = await seed_booking(db, student=student, mentor=mentor, start=slot(3, 11), status="pending_payment")
    expired = await service.expire_booking(app_database, app_cache, unpaid, now=now)
    assert expired.status == "expired"
    assert (await service.expire_booking(app_database, app_cache, unpaid, now=now)).status == "expired"
    with pytest.raises(InvalidTransition) as late:
        await service.confirm_booking(app_database, app_cache, unpaid, now=now)
    assert late.value.extra == {"from": "expired", "to": "confirmed"}

    with pytest.raises(service.BookingNotFound):
        await service.confirm_booking(app_database, app_cache, mentor.id, now=now)
