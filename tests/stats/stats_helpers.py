"""Helpers for the stats tests: read a participant's own stats over HTTP."""

from __future__ import annotations

from typing import Any

from api_support import Client, User


async def read_stats(api: Client, user: User) -> dict[str, Any]:
    """The caller's stats (the student or the mentor dashboard by the user's role); must answer 200."""
    path = "students/me/stats" if user.role == "student" else "mentors/me/stats"
    reply = await api.call("GET", path, user=user)
    assert reply.status == 200, reply.body
    body: dict[str, Any] = reply.body
    return body
