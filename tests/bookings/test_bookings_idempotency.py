"""Idempotency-Key on POST /api/bookings: replay, misuse, concurrent duplicates, failures not stored."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from bookings_helpers import POLICY, Client, MakeMentor, MakeUser, User, is_problem, slot

from shared import idempotency
from shared.auth.principal import Principal
from shared.bookings import service
from shared.bookings.models import BookingCreate, BookingQuery
from shared.cache.cache import Cache
from shared.db.database import Database


def body(mentor: User, days: int, hour: int, **extra: Any) -> dict[str, Any]:
    return {"mentor_id": str(mentor.id), "start": slot(days, hour).isoformat(), "length_minutes": 60, **extra}


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"booking-{uuid.uuid4()}"}


async def count(db: asyncpg.Connection, student: User) -> int:
    n: int = await db.fetchval("SELECT count(*) FROM bookings WHERE student_id = $1", student.id)
    return n


async def test_a_retry_with_the_same_key_and_body_replays_the_first_response(
    api: Client, db: asyncpg.Connection, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    student, mentor = await make_user("student"), await make_mentor()
    headers = key()
    first = await api.call("POST", "bookings", body(mentor, 3, 10), user=student, headers=headers)
    # The same request, its JSON laid out differently: the parsed body is what counts.
    raw_reordered = {"length_minutes": 60, "start": slot(3, 10).isoformat(), "mentor_id": str(mentor.id)}
    second = await api.call("POST", "bookings", raw_reordered, user=student, headers=headers)
    assert first.status == second.status == 201
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.body == first.body
    assert await count(db, student) == 1


async def test_the_same_key_with_another_body_is_refused(
    api: Client, db: asyncpg.Connection, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    student, mentor = await make_user("student"), await make_mentor()
    headers = key()
    assert (await api.call("POST", "bookings", body(mentor, 3, 10), user=student, headers=headers)).status == 201
    other = await api.call("POST", "bookings", body(mentor, 3, 10, notes="changed"), user=student, headers=headers)
    assert is_problem(other, 422, "idempotency_key_reused")
    assert await count(db, student) == 1
    # Keys belong to their user: another student's identical key is theirs alone.
    classmate = await make_user("student")
    theirs = await api.call("POST", "bookings", body(mentor, 3, 12), user=classmate, headers=headers)
    assert theirs.status == 201 and "Idempotent-Replayed" not in theirs.headers


async def test_concurrent_requests_with_one_key_book_once_and_all_get_the_same_booking(
    api: Client, db: asyncpg.Connection, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    student, mentor = await make_user("student"), await make_mentor()
    headers = key()
    replies = await asyncio.gather(
        *(api.call("POST", "bookings", body(mentor, 4, 10), user=student, headers=headers) for _ in range(20))
    )
    assert {reply.status for reply in replies} == {201}, [r.body for r in replies if r.status != 201]
    assert len({reply.body["id"] for reply in replies}) == 1
    assert sum("Idempotent-Replayed" not in reply.headers for reply in replies) == 1
    assert await count(db, student) == 1


async def test_a_failure_is_not_stored_so_the_key_can_succeed_later(
    api: Client, db: asyncpg.Connection, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    student, rival, mentor = await make_user("student"), await make_user("student"), await make_mentor()
    held = await api.call("POST", "bookings", body(mentor, 5, 10), user=rival)
    headers = key()
    taken = await api.call("POST", "bookings", body(mentor, 5, 10), user=student, headers=headers)
    assert is_problem(taken, 409, "slot_taken")
    stored = await db.fetchval("SELECT count(*) FROM idempotency_keys WHERE user_id = $1", student.id)
    assert stored == 0
    cancel = await api.call("POST", f"bookings/{held.body['id']}/cancel", {"reason": "plans changed"}, user=rival)
    assert cancel.status == 200, cancel.body
    retried = await api.call("POST", "bookings", body(mentor, 5, 10), user=student, headers=headers)
    assert retried.status == 201 and "Idempotent-Replayed" not in retried.headers


async def test_a_malformed_key_is_a_bad_request(api: Client, make_user: MakeUser, make_mentor: MakeMentor) -> None:
    student, mentor = await make_user("student"), await make_mentor()
    for bad in ("", " ", "x" * 256, "clé"):
        reply = await api.call("POST", "bookings", body(mentor, 3, 10), user=student, headers={"Idempotency-Key": bad})
        assert is_problem(reply, 400, "invalid_idempotency_key"), (bad, reply.status, reply.body)


async def test_a_replay_bumps_the_caches_the_first_request_died_before_bumping(
    app_database: Database,
    app_cache: Cache,
    monkeypatch: pytest.MonkeyPatch,
    make_user: MakeUser,
    make_mentor: MakeMentor,
) -> None:
    student, mentor = await make_user("student"), await make_mentor()
    data = BookingCreate(mentor_id=mentor.id, start=slot(3, 10), length_minutes=60)
    request_key = idempotency.IdempotencyKey(
        student.id, service.CREATE_OPERATION, "died-after-commit", idempotency.fingerprint(data)
    )

    async def listed(principal: Principal) -> list[str]:
        page = await service.list_bookings(app_database, app_cache, principal, BookingQuery())
        return [booking["id"] for booking in json.loads(page)["data"]]

    async def create() -> idempotency.Outcome:
        return await service.create_booking(
            app_database, app_cache, student.id, data, policy=POLICY, now=datetime.now(UTC), idempotency_key=request_key
        )

    assert await listed(student.principal) == await listed(mentor.principal) == []  # both lists cached

    async def process_dies(*namespaces: str) -> None:
        raise RuntimeError("the process died after the commit")

    with monkeypatch.context() as patched:
        patched.setattr(app_cache, "bump", process_dies)
        with pytest.raises(RuntimeError):
            await create()
    assert await listed(student.principal) == []  # committed, but the cached list does not know yet

    replay = await create()
    assert replay.replayed and replay.status == 201
    assert await listed(student.principal) == await listed(mentor.principal) == [replay.body["id"]]
