"""Benchmark-only app (never deployed): the product's mentor routes beside a bare ceiling function.

`GET /api/ceiling/mentors` returns the bytes stored at `bench:ceiling` in Redis with one GET and
nothing else (no validation, no cache layer, no problem+json): the fastest this host can answer
with the same payload, so `GET /api/mentors` cache hits can be reported as a share of it.
"""

from __future__ import annotations

import azure.functions as func

from shared import resources
from shared.health.triggers import bp as health
from shared.mentors.triggers import bp as mentors

CEILING_KEY = "bench:ceiling"

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in (health, mentors):
    app.register_functions(blueprint)


@app.function_name("ceiling_mentors")
@app.route(route="ceiling/mentors", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def ceiling_mentors(req: func.HttpRequest) -> func.HttpResponse:  # noqa: ARG001 (the binding needs it)
    body = await (await resources.get_redis()).get(CEILING_KEY)
    return func.HttpResponse(body, mimetype="application/json", charset="utf-8")
