"""How the engine calls the app's orchestrator and activity functions.

`FunctionRunner` is the seam: `InvokerRunner` goes through devhost's `Invoker` (the worker's
invocation rules and thread pool, used by the host); `DirectRunner` calls the functions on the
current thread (the in-process DurableHarness). Both decode and encode through the
`azure.functions` converters for `orchestrationTrigger` and `activityTrigger`, as the worker does.
"""

from __future__ import annotations

import inspect
import logging
import traceback
import warnings
from collections.abc import Iterable
from typing import Any, Protocol

from azure.functions.meta import Datum

from devhost.loader import FunctionSpec, binding_converter

log = logging.getLogger("devhost.durable")


class ActivityFailure(Exception):
    """An activity failed; `reason` and `details` become TaskFailed.Reason / .Details."""

    def __init__(self, reason: str, details: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


class FunctionRunner(Protocol):
    """Runs orchestrator and activity functions by their Durable names."""

    def orchestrators(self) -> frozenset[str]:
        """Names `start_new` accepts."""
        ...

    async def run_orchestrator(self, name: str, context_json: str) -> str:
        """The orchestrator's OrchestratorState JSON; raises with the SDK's message when it failed."""
        ...

    async def run_activity(self, name: str, input_text: str | None) -> str:
        """The activity's result as JSON text; raises ActivityFailure."""
        ...


def durable_name(spec: FunctionSpec) -> str:
    """The name the extension registers: the trigger's `orchestration`/`activity` property, else the function name."""
    trigger = spec.trigger
    return str(trigger.get("orchestration") or trigger.get("activity") or spec.name)


def _by_type(specs: Iterable[FunctionSpec], trigger_type: str) -> dict[str, FunctionSpec]:
    return {durable_name(s).lower(): s for s in specs if s.trigger_type == trigger_type}


def activity_failure(name: str, exc: BaseException) -> ActivityFailure:
    """TaskFailed text for an activity that raised (the host's exact wording is inferred)."""
    root = exc.__cause__ or exc
    details = "".join(traceback.format_exception(root)).rstrip()
    return ActivityFailure(f"Activity function '{name}' failed: {type(root).__name__}: {root}", details)


def unknown_function(name: str, kind: str, known: Iterable[str]) -> str:
    listed = ", ".join(f"'{n}'" for n in sorted(known))
    return (
        f"The function '{name}' doesn't exist, is disabled, or is not an {kind} function. "
        f"Additional info: The following are the known {kind} functions: {listed}."
    )


def _encode_activity_result(result: Any) -> str:
    encoded = binding_converter("activityTrigger").encode(result, expected_type=None)
    return str(encoded.value)


class DirectRunner:
    """Calls the functions directly on the event loop's thread (sync) or as coroutines (async)."""

    def __init__(self, specs: Iterable[FunctionSpec]) -> None:
        specs = list(specs)
        self._orchestrators = _by_type(specs, "orchestrationTrigger")
        self._activities = _by_type(specs, "activityTrigger")

    def orchestrators(self) -> frozenset[str]:
        return frozenset(durable_name(s) for s in self._orchestrators.values())

    async def run_orchestrator(self, name: str, context_json: str) -> str:
        spec = self._orchestrators.get(name.lower())
        if spec is None:
            raise LookupError(unknown_function(name, "orchestrator", self.orchestrators()))
        context = binding_converter("orchestrationTrigger").decode(
            Datum(type="string", value=context_json), trigger_metadata={}
        )
        # The worker never escalates warnings (the SDK warns about events nobody waits for yet).
        with warnings.catch_warnings():
            warnings.simplefilter("default", UserWarning)
            result = spec.user_function(**{spec.trigger["name"]: context})
        return str(result)

    async def run_activity(self, name: str, input_text: str | None) -> str:
        spec = self._activities.get(name.lower())
        if spec is None:
            known = [durable_name(s) for s in self._activities.values()]
            raise ActivityFailure(unknown_function(name, "activity", known), None)
        try:
            value = binding_converter("activityTrigger").decode(
                Datum(type="string", value=input_text), trigger_metadata={}
            )
            result = spec.user_function(**{spec.trigger["name"]: value})
            if inspect.isawaitable(result):
                result = await result
            return _encode_activity_result(result)
        except Exception as exc:
            raise activity_failure(name, exc) from exc


class InvokerRunner:
    """Runs the functions through devhost's Invoker, exactly as the host invokes any function."""

    def __init__(self, specs: Iterable[FunctionSpec], invoker: Any) -> None:
        specs = list(specs)
        self._orchestrators = _by_type(specs, "orchestrationTrigger")
        self._activities = _by_type(specs, "activityTrigger")
        self._invoker = invoker

    def orchestrators(self) -> frozenset[str]:
        return frozenset(durable_name(s) for s in self._orchestrators.values())

    async def run_orchestrator(self, name: str, context_json: str) -> str:
        spec = self._orchestrators.get(name.lower())
        if spec is None:
            raise LookupError(unknown_function(name, "orchestrator", self.orchestrators()))
        try:
            result = await self._invoker.invoke(
                spec, Datum(type="string", value=context_json), reason="OrchestrationTrigger"
            )
        except Exception as exc:
            # The worker reports the SDK's exception message; it carries the $OutOfProcData$ state.
            raise RuntimeError(str(exc.__cause__ or exc)) from exc
        return str(result)

    async def run_activity(self, name: str, input_text: str | None) -> str:
        spec = self._activities.get(name.lower())
        if spec is None:
            known = [durable_name(s) for s in self._activities.values()]
            raise ActivityFailure(unknown_function(name, "activity", known), None)
        try:
            result = await self._invoker.invoke(spec, Datum(type="string", value=input_text), reason="ActivityTrigger")
        except Exception as exc:
            raise activity_failure(name, exc) from exc
        return _encode_activity_result(result)
