"""Discover an app's functions exactly as the Python worker does (`index_function_app`).

The worker imports the script module by its stem (`function_app`), requires exactly one
`FunctionRegister` instance among the module's attributes and calls `get_functions()` once (a
second call on the same app raises "does not have a unique function name"). We do the same, then
do the checks the .NET host would do at startup: binding types it can serve, route templates,
and (stricter than Azure) routes that would shadow each other.

Module naming: the module keeps the worker's name (the script's stem, so `__name__ ==
"function_app"`), but is always executed afresh from the given file through
`spec_from_file_location` and replaces any `function_app` entry already in `sys.modules`. That lets
several apps (tests) load in one process and makes a second `load_app` build a new app instance
instead of calling `get_functions()` twice on the old one. Other modules the app imports (helpers,
blueprints) are ordinary cached imports, shared by every load in the process.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func

from devhost import routing

SUPPORTED_BINDING_TYPES = frozenset(
    {
        "httpTrigger",
        "http",
        "timerTrigger",
        "blobTrigger",
        "orchestrationTrigger",
        "activityTrigger",
        "entityTrigger",
        "durableClient",
    }
)


class LoadError(Exception):
    """The app cannot be loaded; the message says why and which function is at fault."""


def binding_converter(binding_type: str) -> Any:
    """The worker's converter for a binding type (None when the registry has none)."""
    registry = func.get_binding_registry()  # type: ignore[no-untyped-call]
    return registry.get(binding_type)


@dataclass(frozen=True)
class FunctionSpec:
    """One indexed function: what the worker reports to the host, plus the callable it invokes."""

    name: str
    trigger: dict[str, Any]
    bindings: tuple[dict[str, Any], ...]
    user_function: Callable[..., Any]
    is_async: bool
    directory: str = ""
    retry: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def trigger_type(self) -> str:
        return str(self.trigger["type"])

    @property
    def has_return(self) -> bool:
        """Whether a `$return` binding or an implicit output (Durable triggers) takes the return value.

        Without one, the worker fails an invocation whose function returned non-None.
        """
        return any(
            b.get("name") == "$return"
            or getattr(binding_converter(str(b.get("type"))), "has_implicit_output", lambda: False)()
            for b in self.bindings
        )

    @property
    def requires_context(self) -> bool:
        """The worker injects `context` when the function has such a parameter no binding claims."""
        try:
            params = inspect.signature(self.user_function).parameters
        except (TypeError, ValueError):
            return False
        return "context" in params and not any(b.get("name") == "context" for b in self.bindings)

    def binding(self, name: str) -> dict[str, Any] | None:
        """The raw binding called `name`, if any."""
        return next((b for b in self.bindings if b.get("name") == name), None)

    def input_bindings(self) -> tuple[dict[str, Any], ...]:
        """Non-trigger IN bindings (e.g. durableClient) whose values the caller supplies."""
        return tuple(b for b in self.bindings if str(b.get("direction", "")).upper() == "IN" and b is not self.trigger)

    def output_bindings(self) -> tuple[dict[str, Any], ...]:
        """OUT bindings other than `$return`: the worker passes an `Out` object for each."""
        return tuple(
            b for b in self.bindings if str(b.get("direction", "")).upper() == "OUT" and b.get("name") != "$return"
        )


@dataclass(frozen=True)
class LoadedApp:
    functions: tuple[FunctionSpec, ...]

    def by_trigger(self, trigger_type: str) -> tuple[FunctionSpec, ...]:
        """Functions with that trigger type, in registration order."""
        return tuple(f for f in self.functions if f.trigger_type == trigger_type)

    def get(self, name: str) -> FunctionSpec:
        """The function called `name` (case-insensitive, like the host); KeyError if absent."""
        for spec in self.functions:
            if spec.name.lower() == name.lower():
                return spec
        raise KeyError(name)


def build_routes(functions: Sequence[FunctionSpec], route_prefix: str) -> list[routing.Route]:
    """The host's route table for the HTTP functions, in registration order."""
    routes = []
    for spec in functions:
        if spec.trigger_type != "httpTrigger":
            continue
        route = spec.trigger.get("route")
        template_text = routing.join_route(route_prefix, route if route is not None else spec.name)
        try:
            template = routing.parse_template(template_text)
        except routing.RouteTemplateError as exc:
            raise LoadError(f"function {spec.name!r} has an invalid route: {exc}") from exc
        methods = spec.trigger.get("methods")
        routes.append(routing.Route(spec.name, template, routing.expand_methods(methods)))
    return routes


def check_routes(routes: Sequence[routing.Route]) -> None:
    """Refuse routes that could match the same request (Azure would silently pick the first)."""
    conflicts = routing.find_ambiguities(routes)
    if conflicts:
        lines = [
            f"  {a.name} ({a.template.text} {_methods(a)}) vs {b.name} ({b.template.text} {_methods(b)})"
            for a, b in conflicts
        ]
        raise LoadError("ambiguous HTTP routes (some request matches both):\n" + "\n".join(lines))


def _methods(route: routing.Route) -> str:
    return "ANY" if route.methods is None else ",".join(sorted(route.methods))


def _import_script(app_dir: Path, script: str) -> Any:
    path = app_dir / script
    if not path.is_file():
        raise LoadError(f"script file {path} not found")
    module_name = path.stem
    if str(app_dir) in sys.path:
        sys.path.remove(str(app_dir))
    sys.path.insert(0, str(app_dir))
    importlib.invalidate_caches()
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise LoadError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(module_name)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        if previous is not None:
            sys.modules[module_name] = previous
        else:
            sys.modules.pop(module_name, None)
        if isinstance(exc, Exception):
            raise LoadError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
        raise
    return module


def _find_register(module: Any, script: str) -> func.FunctionRegister:
    found: func.FunctionRegister | None = None
    for attribute in module.__dir__():
        value = getattr(module, attribute, None)
        if isinstance(value, func.FunctionRegister):
            if found is not None:
                raise LoadError(
                    f"More than one {type(found).__name__} or other top level function app instances are defined "
                    f"in {script}."
                )
            found = value
    if found is None:
        raise LoadError(f"Could not find top level function app instances in {script}.")
    return found


def _spec_for(function: Any, directory: str) -> FunctionSpec:
    name = function.get_function_name()
    bindings = tuple(json.loads(raw) for raw in function.get_raw_bindings())
    unsupported = sorted({str(b.get("type")) for b in bindings} - SUPPORTED_BINDING_TYPES)
    if unsupported:
        raise LoadError(
            f"function {name!r} uses binding type(s) {', '.join(unsupported)}, which devhost does not serve; "
            f"supported: {', '.join(sorted(SUPPORTED_BINDING_TYPES))}. Use an SDK client instead of the binding."
        )
    trigger_obj = function.get_trigger()
    index = function.get_bindings().index(trigger_obj)
    user_function = function.get_user_function()
    return FunctionSpec(
        name=name,
        trigger=bindings[index],
        bindings=bindings,
        user_function=user_function,
        is_async=inspect.iscoroutinefunction(user_function),
        directory=directory,
        retry=function.get_settings_dict("retry"),
    )


def load_app(app_dir: Path, script: str = "function_app.py") -> LoadedApp:
    """Import the app, index its functions once and validate them; raise LoadError when unusable."""
    app_dir = Path(app_dir).resolve()
    module = _import_script(app_dir, script)
    register = _find_register(module, script)
    try:
        functions = register.get_functions()
    except Exception as exc:
        raise LoadError(f"indexing {script} failed: {exc}") from exc
    specs = tuple(_spec_for(function, str(app_dir)) for function in functions)
    check_routes(build_routes(specs, "api"))
    return LoadedApp(specs)
