"""GET /api/admin/ui-config (public read, as in the original system)."""

from __future__ import annotations

from shared import resources
from shared.http.auth import ANONYMOUS
from shared.http.endpoint import ApiRequest, blueprint, endpoint
from shared.uiconfig.service import get_ui_config

bp = blueprint()


@endpoint(bp, name="get_ui_config", route="admin/ui-config", method="GET", auth=ANONYMOUS)
async def read_ui_config(_: ApiRequest[None]) -> bytes:
    return await get_ui_config(await resources.get_database(), await resources.get_cache())
