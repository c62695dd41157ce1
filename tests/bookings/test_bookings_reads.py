"""GET /api/bookings and /api/bookings/{id}: who sees what (and changes what), filters, keyset
pages, and cached lists that are never stale after a change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import asyncpg
from bookings_helpers import Client, MakeMentor, MakeUser, User, is_problem, seed_booking, slot

from shared.bookings import service
from shared.bookings.models import StatusUpdate
from shared.cache.cache import Cache
from shared.db.database import Database


async def listing(api: Client, user: User, **params: Any) -> Any:
    reply = await api.call("GET", "bookings?" + urlencode(params), user=user)
    assert reply.status == 200, reply.body
    return reply.body


async def test_only_participants_and_admins_see_or_change_a_booking(
    api: Client, db: asyncpg.Connection, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    owner, other_student, admin = await make_user("student"), await make_user("student"), await make_user("admin")
    mentor, other_mentor = await make_mentor(), await make_mentor()
    body = {"mentor_id": str(mentor.id), "start": slot(9, 10).isoformat(), "length_minutes": 60}
    created = await api.call("POST", "bookings", body, user=owner)
    booking_id = created.body["id"]
    booking = {k: v for k, v in created.body.items() if k != "payment"}  # createBooking adds the checkout
    before = dict(await db.fetchrow("SELECT * FROM bookings WHERE id = $1", booking_id))

    for user in (owner, mentor, admin):
        seen = await api.call("GET", f"bookings/{booking_id}", user=user)
        assert seen.status == 200 and seen.body == booking, user.role
    for stranger in (other_student, other_mentor):
        assert is_problem(await api.call("GET", f"bookings/{booking_id}", user=stranger), 404, "booking_not_found")
        moved = await api.call(
            "POST", f"bookings/{booking_id}/reschedule", {"start": slot(9, 14).isoformat()}, user=stranger
        )
        assert is_problem(moved, 404, "booking_not_found")
        cancelled = await api.call("POST", f"bookings/{booking_id}/cancel", {"reason": "mine now"}, user=stranger)
        assert is_problem(cancelled, 404, "booking_not_found")
        assert (await listing(api, stranger))["data"] == []
    patched = await api.call("PATCH", f"bookings/{booking_id}/status", {"status": "completed"}, user=other_mentor)
    assert is_problem(patched, 404, "booking_not_found")
    for student in (owner, other_student):  # the status route is for mentors and admins
        refused = await api.call("PATCH", f"bookings/{booking_id}/status", {"status": "cancelled"}, user=student)
        assert is_problem(refused, 403, "forbidden")
    missing = await api.call("GET", f"bookings/{other_student.id}", user=admin)
    assert is_problem(missing, 404, "booking_not_found")

    assert dict(await db.fetchrow("SELECT * FROM bookings WHERE id = $1", booking_id)) == before
    assert [b["id"] for b in (await listing(api, owner))["data"]] == [booking_id]
    assert [b["id"] for b in (await listing(api, mentor))["data"]] == [booking_id]


async def test_filters_and_keyset_pages_in_a_stable_order(
    api: Client, db: asyncpg.Connection, make_user: MakeUser, make_mentor: MakeMentor
) -> None:
    student, mentor = await make_user("student"), await make_mentor()
    starts = [slot(-3, 10), slot(-1, 10), slot(1, 10), slot(2, 10), slot(2, 12)]
    statuses = ["completed", "no_show", "confirmed", "pending_payment", "confirmed"]
    ids = [
        str(await seed_booking(db, student=student, mentor=mentor, start=start, status=status))
        for start, status in zip(starts, statuses, strict=True)
    ]
    newest_first = ids[::-1]

    seen, cursor, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await listing(api, student, **params)
        seen += [b["id"] for b in page["data"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == newest_first and pages == 3

    as_mentor = await listing(api, mentor, limit=10)
    assert [b["id"] for b in as_mentor["data"]] == newest_first
    assert (await listing(api, student, role="mentor"))["data"] == []
    confirmed = await listing(api, student, status="confirmed")
    assert [b["id"] for b in confirmed["data"]] == [ids[4], ids[2]]
    window = await listing(api, student, **{"from": slot(-1, 10).isoformat(), "to": slot(2, 12).isoformat()})
    assert [b["id"] for b in window["data"]] == [ids[3], ids[2], ids[1]]  # from inclusive, to exclusive

    bad_cursor = await api.call("GET", "bookings?cursor=not-a-cursor", user=student)
    assert is_problem(bad_cursor, 422, "invalid_cursor")
    bad_status = await api.call("GET", "bookings?status=paid", user=student)
    assert is_problem(bad_status, 422, "validation_failed")
    naive = await api.call("GET", "bookings?" + urlencode({"from": "2030-01-01T00:00:00"}), user=student)
    assert is_problem(naive, 422, "validation_failed")
    admin_list = await api.call("GET", "bookings", user=await make_user("admin"))
    assert is_problem(admin_list, 403, "forbidden")


async def test_cached_lists_are_never_stale_after_a_change(
    api: Client,
    db: asyncpg.Connection,
    app_database: Database,
    app_cache: Cache,
    make_user: MakeUser,
    make_mentor: MakeMentor,
) -> None:
    student, mentor = await make_user("student"), await make_mentor()

    async def lists() -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
        """Both participants' lists, each read twice so the second read comes from the cache."""
        views = []
        for user in (student, mentor):
            await listing(api, user)
            page = await listing(api, user)
            views.append([(b["id"], b["status"], b["start"]) for b in page["data"]])
        return views[0], views[1]

    async def truth() -> list[tuple[str, str, str]]:
        rows = await db.fetch(
            "SELECT id, status, scheduled_at FROM bookings WHERE student_id = $1 ORDER BY scheduled_at DESC, id DESC",
            student.id,
        )
        return [(str(r["id"]), r["status"], r["scheduled_at"].isoformat().replace("+00:00", "Z")) for r in rows]

    async def check() -> None:
        as_student, as_mentor = await lists()
        assert as_student == as_mentor == await truth()

    await check()
    body = {"mentor_id": str(mentor.id), "start": slot(10, 10).isoformat(), "length_minutes": 60}
    created = await api.call("POST", "bookings", body, user=student)
    booking_id = created.body["id"]
    await check()
    await service.confirm_booking(app_database, app_cache, booking_id, now=datetime.now(UTC))  # the payment flow
    await check()
    moved = await api.call(
        "POST", f"bookings/{booking_id}/reschedule", {"start": slot(10, 15).isoformat()}, user=mentor
    )
    assert moved.status == 200, moved.body
    await check()
    second = await api.call("POST", "bookings", {**body, "start": slot(11, 9).isoformat()}, user=student)
    await check()
    cancelled = await api.call("POST", f"bookings/{second.body['id']}/cancel", {"reason": "double"}, user=student)
    assert cancelled.status == 200
    await check()
    # The mentor marks it completed once it has started (the service, with `now` after the start).
    completed = StatusUpdate(status="completed")
    done = await service.update_status(
        app_database, app_cache, mentor.principal, booking_id, completed, now=slot(10, 15, 30)
    )
    assert done.status == "completed"
    await check()
    third = await api.call("POST", "bookings", {**body, "start": slot(13, 9).isoformat()}, user=student)
    expired = await service.expire_booking(app_database, app_cache, third.body["id"], now=datetime.now(UTC))
    assert expired.status == "expired"
    await check()
