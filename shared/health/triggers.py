"""GET /api/health."""

from __future__ import annotations

import json

import azure.functions as func

from shared import resources
from shared.health.service import check_health
from shared.http.auth import ANONYMOUS
from shared.http.endpoint import ApiRequest, blueprint, endpoint

bp = blueprint()


async def _database() -> bool:
    database = await resources.get_database()
    async with database.connection() as conn:
        return bool(await conn.fetchval("SELECT 1") == 1)


async def _redis() -> bool:
    return await (await resources.get_cache()).ping()


async def _storage() -> bool:
    service = await resources.get_blob_service()
    await service.get_service_properties()
    return True


@endpoint(bp, name="health", route="health", method="GET", auth=ANONYMOUS)
async def health(_: ApiRequest[None]) -> func.HttpResponse:
    cache = await resources.get_cache()
    report = await check_health(_database, _redis, _storage, cache.describe())
    status = 503 if report.status == "unhealthy" else 200
    return func.HttpResponse(
        json.dumps(report.as_dict()),
        status_code=status,
        mimetype="application/json",
        headers={"Cache-Control": "no-store"},
    )
