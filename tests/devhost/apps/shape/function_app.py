"""Test app for the HTTP request/response shape (tests/devhost/test_http_shape.py)."""

import json

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def _describe(req: func.HttpRequest) -> dict[str, object]:
    return {
        "method": req.method,
        "url": req.url,
        "headers": dict(req.headers),
        "params": dict(req.params),
        "route_params": dict(req.route_params),
        "body_hex": req.get_body().hex(),
        "body_is_bytes": isinstance(req.get_body(), bytes),
    }


@app.route(route="echo/{id:int?}", methods=["GET", "POST", "PUT"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(_describe(req)), mimetype="application/json")


@app.route(route="files/{*path}", methods=["GET"])
async def files(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(_describe(req)), mimetype="application/json")


@app.route(route="json", methods=["POST"])
def parse_json(req: func.HttpRequest) -> func.HttpResponse:
    try:
        return func.HttpResponse(json.dumps({"parsed": req.get_json()}), mimetype="application/json")
    except ValueError as exc:
        return func.HttpResponse(json.dumps({"error": str(exc)}), status_code=400, mimetype="application/json")


@app.route(route="text", methods=["GET"])
def text(req: func.HttpRequest) -> str:
    return "plain text"


@app.route(route="nothing", methods=["GET"])
def nothing(req: func.HttpRequest) -> func.HttpResponse:
    return None  # type: ignore[return-value]


@app.route(route="boom", methods=["GET"])
async def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("kaboom")


@app.route(route="cookies", methods=["GET"])
def cookies(req: func.HttpRequest) -> func.HttpResponse:
    response = func.HttpResponse("ok", status_code=201, headers={"X-Custom": "yes"})
    response.headers.add("Set-Cookie", "session=abc123; Path=/app; HttpOnly; Secure; SameSite=Lax")
    response.headers.add("Set-Cookie", "theme=dark")
    return response


@app.route(route="items/{item_id:int}", methods=["GET"])
def item(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"item {req.route_params['item_id']}")


@app.route(route="whoami", methods=["GET"])
def whoami(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(
            {
                "invocation_id": context.invocation_id,
                "function_name": context.function_name,
                "trace_parent": context.trace_context.trace_parent,
            }
        ),
        mimetype="application/json",
    )


@app.route(route="secret/fn", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def function_level(req: func.HttpRequest) -> str:
    return "function level"


@app.route(route="secret/admin", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
def admin_level(req: func.HttpRequest) -> str:
    return "admin level"


@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer", run_on_startup=False)
def yearly(timer: func.TimerRequest) -> None:
    pass
