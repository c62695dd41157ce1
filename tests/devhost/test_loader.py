"""The loader indexes apps as the worker does and refuses what the host could not serve."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from devhost.loader import LoadError, load_app

APPS = Path(__file__).parent / "apps"


def test_indexes_functions_like_the_worker() -> None:
    loaded = load_app(APPS / "loader_ok")
    module = sys.modules["function_app"]
    assert module.__file__ == str((APPS / "loader_ok" / "function_app.py").resolve())
    assert module.GET_FUNCTIONS_CALLS == [1]  # get_functions() exactly once

    names = [f.name for f in loaded.functions]
    assert names == ["get_booking", "my_bookings", "NightlyCleanup", "booking_flow", "charge"]

    booking = loaded.get("GET_BOOKING")  # host function names are case-insensitive
    assert booking.trigger_type == "httpTrigger"
    assert booking.trigger["route"] == "bookings/{booking_id:int}"
    assert booking.trigger["authLevel"] == "FUNCTION"
    # Decorators apply bottom-up, so durableClient comes first in the raw bindings.
    assert [b["type"] for b in booking.bindings] == ["durableClient", "httpTrigger", "http"]
    assert booking.is_async and booking.has_return
    assert [b["name"] for b in booking.input_bindings()] == ["client"]

    nightly = loaded.get("NightlyCleanup")
    assert nightly.trigger["schedule"] == "0 0 3 * * *"
    assert not nightly.is_async and not nightly.has_return
    assert [f.name for f in loaded.by_trigger("timerTrigger")] == ["NightlyCleanup"]
    # Durable triggers return through an implicit output binding.
    assert loaded.get("charge").has_return and loaded.get("booking_flow").has_return
    with pytest.raises(KeyError):
        loaded.get("missing")


def test_loading_again_builds_a_fresh_app() -> None:
    first = load_app(APPS / "loader_ok")
    first_module = sys.modules["function_app"]
    second = load_app(APPS / "loader_ok")  # would raise if get_functions() ran twice on one app
    assert sys.modules["function_app"] is not first_module
    assert sys.modules["function_app"].GET_FUNCTIONS_CALLS == [1]
    assert [f.name for f in first.functions] == [f.name for f in second.functions]


def test_apps_with_the_same_module_name_do_not_collide() -> None:
    load_app(APPS / "loader_ok")
    other = load_app(APPS / "shape")
    assert "echo" in [f.name for f in other.functions]
    assert sys.modules["function_app"].__file__ == str((APPS / "shape" / "function_app.py").resolve())


def test_unsupported_binding_type_is_refused() -> None:
    with pytest.raises(LoadError, match=r"on_job.*queueTrigger"):
        load_app(APPS / "bad_binding")


def test_two_function_registers_are_refused() -> None:
    with pytest.raises(LoadError, match="More than one FunctionApp"):
        load_app(APPS / "two_apps")


def test_ambiguous_routes_are_refused() -> None:
    with pytest.raises(LoadError, match=r"ambiguous HTTP routes[\s\S]*get_booking.*my_bookings"):
        load_app(APPS / "ambiguous")


def test_constraint_that_excludes_the_literal_is_not_ambiguous() -> None:
    loaded = load_app(APPS / "loader_ok")  # bookings/{booking_id:int} next to bookings/mine
    assert {"get_booking", "my_bookings"} <= {f.name for f in loaded.functions}


def test_invalid_route_template_is_refused(tmp_path: Path) -> None:
    (tmp_path / "function_app.py").write_text(
        "import azure.functions as func\n"
        "app = func.FunctionApp()\n"
        "@app.route(route='items/{id:nosuch}')\n"
        "def items(req: func.HttpRequest) -> str:\n"
        "    return 'x'\n"
    )
    with pytest.raises(LoadError, match=r"items.*invalid route.*nosuch"):
        load_app(tmp_path)


def test_missing_register_and_import_errors_are_load_errors(tmp_path: Path) -> None:
    (tmp_path / "function_app.py").write_text("VALUE = 1\n")
    with pytest.raises(LoadError, match="Could not find top level function app"):
        load_app(tmp_path)
    (tmp_path / "function_app.py").write_text("raise RuntimeError('broken at import')\n")
    with pytest.raises(LoadError, match="broken at import"):
        load_app(tmp_path)
    with pytest.raises(LoadError, match="not found"):
        load_app(tmp_path, "missing_app.py")
