"""Stats routes: each participant reads only their own (`/me`), so there is nobody else's to ask for."""

from __future__ import annotations

from datetime import UTC, datetime

from shared import resources
from shared.http.auth import roles
from shared.http.endpoint import ApiRequest, blueprint, endpoint
from shared.stats import service

bp = blueprint()


@endpoint(bp, name="get_student_stats", route="students/me/stats", method="GET", auth=roles("student"))
async def get_student_stats(request: ApiRequest[None]) -> bytes:
    db, cache = await resources.get_database(), await resources.get_cache()
    return await service.student_stats(db, cache, request.user.user_id, now=datetime.now(UTC))


@endpoint(bp, name="get_mentor_stats", route="mentors/me/stats", method="GET", auth=roles("mentor"))
async def get_mentor_stats(request: ApiRequest[None]) -> bytes:
    db, cache = await resources.get_database(), await resources.get_cache()
    return await service.mentor_stats(db, cache, request.user.user_id, now=datetime.now(UTC))
