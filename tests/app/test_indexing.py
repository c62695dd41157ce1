"""Azure fidelity: the Functions worker's own indexing accepts function_app.py, and the function
table (trigger, route, methods, auth level) only changes deliberately."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Run in a child process: the worker imports function_app as a top-level module and keeps
# registry state in module globals, neither of which should leak into the test session.
_INDEX_SCRIPT = r"""
import json, sys
from types import SimpleNamespace

from azure_functions_runtime import functions, loader
from azure_functions_runtime.bindings import meta


class BindingInfo:  # the FunctionRpc.proto enums the indexer reads
    out, inout, undefined = 1, 2, 0

    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


setattr(BindingInfo, "in", 0)


class Message:
    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


protos = SimpleNamespace(BindingInfo=BindingInfo, RpcFunctionMetadata=Message, RpcRetryOptions=Message)
meta.load_binding_registry()
indexed = loader.index_function_app("function_app.py")
metadata, _ = loader.process_indexed_function(protos, functions.Registry(), indexed, ".")
table = {}
for fn in metadata:
    raw = [json.loads(b) for b in fn.raw_bindings]
    trigger = next(b for b in raw if b["type"].lower().endswith("trigger"))
    table[fn.name] = {
        "trigger": trigger["type"],
        "route": trigger.get("route"),
        "methods": trigger.get("methods"),
        "authLevel": trigger.get("authLevel"),
    }
json.dump(table, sys.stdout, sort_keys=True)
"""

EXPECTED_FUNCTIONS = {
    "get_ui_config": {
        "trigger": "httpTrigger",
        "route": "admin/ui-config",
        "methods": ["GET"],
        "authLevel": "ANONYMOUS",
    },
    "health": {"trigger": "httpTrigger", "route": "health", "methods": ["GET"], "authLevel": "ANONYMOUS"},
    "admin_list_users": {
        "trigger": "httpTrigger",
        "route": "admin/users",
        "methods": ["GET"],
        "authLevel": "ANONYMOUS",
    },
    "admin_update_user": {
        "trigger": "httpTrigger",
        "route": "admin/users/{id}",
        "methods": ["PATCH"],
        "authLevel": "ANONYMOUS",
    },
    "delete_user": {"trigger": "httpTrigger", "route": "users/me", "methods": ["DELETE"], "authLevel": "ANONYMOUS"},
    "get_me": {"trigger": "httpTrigger", "route": "users/me", "methods": ["GET"], "authLevel": "ANONYMOUS"},
    "login": {"trigger": "httpTrigger", "route": "auth/login", "methods": ["POST"], "authLevel": "ANONYMOUS"},
    "logout": {"trigger": "httpTrigger", "route": "auth/logout", "methods": ["POST"], "authLevel": "ANONYMOUS"},
    "refresh": {"trigger": "httpTrigger", "route": "auth/refresh", "methods": ["POST"], "authLevel": "ANONYMOUS"},
    "register": {"trigger": "httpTrigger", "route": "auth/register", "methods": ["POST"], "authLevel": "ANONYMOUS"},
    "update_user": {"trigger": "httpTrigger", "route": "users/me", "methods": ["PATCH"], "authLevel": "ANONYMOUS"},
    "create_mentor": {"trigger": "httpTrigger", "route": "mentors", "methods": ["POST"], "authLevel": "ANONYMOUS"},
    "list_mentors": {"trigger": "httpTrigger", "route": "mentors", "methods": ["GET"], "authLevel": "ANONYMOUS"},
    "get_own_mentor": {"trigger": "httpTrigger", "route": "mentors/me", "methods": ["GET"], "authLevel": "ANONYMOUS"},
    "update_mentor": {"trigger": "httpTrigger", "route": "mentors/me", "methods": ["PATCH"], "authLevel": "ANONYMOUS"},
    "update_mentor_hourly_rate": {
        "trigger": "httpTrigger",
        "route": "mentors/me/hourly-rate",
        "methods": ["PUT"],
        "authLevel": "ANONYMOUS",
    },
    "update_mentor_upi_id": {
        "trigger": "httpTrigger",
        "route": "mentors/me/upi-id",
        "methods": ["PUT"],
        "authLevel": "ANONYMOUS",
    },
    "get_mentor_availability": {
        "trigger": "httpTrigger",
        "route": "mentors/me/availability",
        "methods": ["GET"],
        "authLevel": "ANONYMOUS",
    },
    "set_mentor_availability": {
        "trigger": "httpTrigger",
        "route": "mentors/me/availability",
        "methods": ["PUT"],
        "authLevel": "ANONYMOUS",
    },
    "get_mentor": {
        "trigger": "httpTrigger",
        "route": "mentors/{id:guid}",
        "methods": ["GET"],
        "authLevel": "ANONYMOUS",
    },
    "list_mentor_slots": {
        "trigger": "httpTrigger",
        "route": "mentors/{id:guid}/slots",
        "methods": ["GET"],
        "authLevel": "ANONYMOUS",
    },
    "set_mentor_active": {
        "trigger": "httpTrigger",
        "route": "admin/mentors/{id:guid}/active",
        "methods": ["PUT"],
        "authLevel": "ANONYMOUS",
    },
    "create_booking": {"trigger": "httpTrigger", "route": "bookings", "methods": ["POST"], "authLevel": "ANONYMOUS"},
    "list_bookings": {"trigger": "httpTrigger", "route": "bookings", "methods": ["GET"], "authLevel": "ANONYMOUS"},
    "get_booking": {
        "trigger": "httpTrigger",
        "route": "bookings/{id:guid}",
        "methods": ["GET"],
        "authLevel": "ANONYMOUS",
    },
    "reschedule_booking": {
        "trigger": "httpTrigger",
        "route": "bookings/{id:guid}/reschedule",
        "methods": ["POST"],
        "authLevel": "ANONYMOUS",
    },
    "cancel_booking": {
        "trigger": "httpTrigger",
        "route": "bookings/{id:guid}/cancel",
        "methods": ["POST"],
        "authLevel": "ANONYMOUS",
    },
    "update_booking_status": {
        "trigger": "httpTrigger",
        "route": "bookings/{id:guid}/status",
        "methods": ["PATCH"],
        "authLevel": "ANONYMOUS",
    },
    "expire_stale_holds": {"trigger": "timerTrigger", "route": None, "methods": None, "authLevel": None},
    "create_review": {
        "trigger": "httpTrigger",
        "route": "bookings/{id:guid}/review",
        "methods": ["POST"],
        "authLevel": "ANONYMOUS",
    },
    "list_mentor_reviews": {
        "trigger": "httpTrigger",
        "route": "mentors/{id:guid}/reviews",
        "methods": ["GET"],
        "authLevel": "ANONYMOUS",
    },
    "get_student_stats": {
        "trigger": "httpTrigger",
        "route": "students/me/stats",
        "methods": ["GET"],
        "authLevel": "ANONYMOUS",
    },
    "get_mentor_stats": {
        "trigger": "httpTrigger",
        "route": "mentors/me/stats",
        "methods": ["GET"],
        "authLevel": "ANONYMOUS",
    },
    "start_booking_payment": {
        "trigger": "httpTrigger",
        "route": "bookings/{id:guid}/payment",
        "methods": ["POST"],
        "authLevel": "ANONYMOUS",
    },
    "get_booking_payment": {
        "trigger": "httpTrigger",
        "route": "bookings/{id:guid}/payment",
        "methods": ["GET"],
        "authLevel": "ANONYMOUS",
    },
    "verify_razorpay_payment": {
        "trigger": "httpTrigger",
        "route": "payments/razorpay/verify",
        "methods": ["POST"],
        "authLevel": "ANONYMOUS",
    },
    "razorpay_webhook": {
        "trigger": "httpTrigger",
        "route": "payments/razorpay/webhook",
        "methods": ["POST"],
        "authLevel": "ANONYMOUS",
    },
    "stripe_webhook": {
        "trigger": "httpTrigger",
        "route": "payments/stripe/webhook",
        "methods": ["POST"],
        "authLevel": "ANONYMOUS",
    },
    "reconcile_payments": {"trigger": "timerTrigger", "route": None, "methods": None, "authLevel": None},
    "booking_payment": {"trigger": "orchestrationTrigger", "route": None, "methods": None, "authLevel": None},
    "payments_create_order": {"trigger": "activityTrigger", "route": None, "methods": None, "authLevel": None},
    "payments_confirm_booking": {"trigger": "activityTrigger", "route": None, "methods": None, "authLevel": None},
    "payments_release_booking": {"trigger": "activityTrigger", "route": None, "methods": None, "authLevel": None},
}


def index_with_the_worker() -> dict[str, dict[str, object]]:
    result = subprocess.run(
        [sys.executable, "-c", _INDEX_SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"the worker's indexing rejected function_app.py:\n{result.stderr}"
    table: dict[str, dict[str, object]] = json.loads(result.stdout)
    return table


def test_the_worker_indexes_the_app_and_the_function_table_is_as_recorded() -> None:
    assert index_with_the_worker() == EXPECTED_FUNCTIONS


def test_the_worker_rejects_a_parameter_no_binding_declares(tmp_path: Path) -> None:
    (tmp_path / "function_app.py").write_text(
        "import azure.functions as func\n"
        "app = func.FunctionApp()\n"
        "@app.route(route='x')\n"
        "def broken(request: func.HttpRequest) -> func.HttpResponse:\n"
        "    return func.HttpResponse('x')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", _INDEX_SCRIPT], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode != 0
    assert "request" in result.stderr
