"""Invoke a function the way the Python worker does (`invocation_request`).

- The trigger Datum is decoded with the converter from `azure.functions.get_binding_registry()`,
  exactly as the worker decodes what the host sends, so the function sees worker-identical objects.
- `async def` functions run on the host's (single, long-lived) event loop; sync ones in a
  ThreadPoolExecutor sized like the worker's (`PYTHON_THREADPOOL_THREAD_COUNT`, else the Python
  default `min(32, cpu + 4)`).
- `context` is injected when the function has a parameter of that name that no binding claims.
- A function with no `$return` (or implicit output) binding that returns non-None fails.
- `functionTimeout`: an async invocation is cancelled; a sync one cannot be stopped (Azure restarts
  the worker process), so the invocation fails and is logged while its thread runs on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import azure.functions as func

# TraceContext/RetryContext ABCs are not re-exported by azure.functions; func.Context's properties
# are typed with these.
from azure.functions import _abc as azf_abc
from azure.functions.meta import Datum

from devhost.loader import FunctionSpec, binding_converter

log = logging.getLogger("devhost.invoker")

# The worker shares one threading.local across invocations and sets `.invocation_id` per call.
_thread_local = threading.local()


class InvocationError(Exception):
    """The function (or decoding its trigger) failed; the invocation id identifies its logs."""

    def __init__(self, function_name: str, invocation_id: str, message: str) -> None:
        super().__init__(f"Executing 'Functions.{function_name}' (Id={invocation_id}) failed: {message}")
        self.function_name = function_name
        self.invocation_id = invocation_id


class InvocationTimeout(InvocationError):
    """The invocation exceeded host.json's functionTimeout."""


class TraceContext(azf_abc.TraceContext):
    def __init__(self, trace_parent: str, trace_state: str = "", attributes: Mapping[str, str] | None = None) -> None:
        self._trace_parent = trace_parent
        self._trace_state = trace_state
        self._attributes = dict(attributes or {})

    @property
    def trace_parent(self) -> str:
        return self._trace_parent

    @property
    def trace_state(self) -> str:
        return self._trace_state

    @property
    def attributes(self) -> dict[str, str]:
        return self._attributes


class RetryContext(azf_abc.RetryContext):
    def __init__(self, retry_count: int = 0, max_retry_count: int = 0, exception: Any = None) -> None:
        self._retry_count = retry_count
        self._max_retry_count = max_retry_count
        self._exception = exception

    @property
    def retry_count(self) -> int:
        return self._retry_count

    @property
    def max_retry_count(self) -> int:
        return self._max_retry_count

    @property
    def exception(self) -> Any:
        return self._exception


class Context(func.Context):
    """The invocation context handed to functions with a `context` parameter."""

    def __init__(
        self,
        function_name: str,
        function_directory: str,
        invocation_id: str,
        trace_context: TraceContext,
        retry_context: RetryContext,
    ) -> None:
        self._function_name = function_name
        self._function_directory = function_directory
        self._invocation_id = invocation_id
        self._trace_context = trace_context
        self._retry_context = retry_context

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return _thread_local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> TraceContext:
        return self._trace_context

    @property
    def retry_context(self) -> RetryContext:
        return self._retry_context


class Out(func.Out[Any]):
    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


def new_traceparent(parent: str | None = None) -> str:
    """A W3C traceparent for the invocation, continuing `parent`'s trace when it is valid."""
    parts = (parent or "").split("-")
    trace_id = parts[1] if len(parts) == 4 and len(parts[1]) == 32 else secrets.token_hex(16)
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"


def default_thread_count() -> int | None:
    """PYTHON_THREADPOOL_THREAD_COUNT, else None (ThreadPoolExecutor's min(32, cpu + 4))."""
    value = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT")
    if value and value.isdigit() and int(value) > 0:
        return int(value)
    return None


def _run_sync(invocation_id: str, function: Callable[..., Any], args: dict[str, Any]) -> Any:
    _thread_local.invocation_id = invocation_id
    try:
        return function(**args)
    finally:
        _thread_local.invocation_id = None


class Invoker:
    """Runs functions with the worker's concurrency model and invocation rules."""

    def __init__(self, thread_count: int | None = None, *, function_timeout: timedelta | None = None) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=thread_count or default_thread_count(), thread_name_prefix="devhost-sync"
        )
        self.function_timeout = function_timeout
        self._tasks: set[asyncio.Task[Any]] = set()
        self.overrunning: set[str] = set()  # sync invocations still running past functionTimeout
        self._closed = False

    async def invoke(
        self,
        spec: FunctionSpec,
        trigger: Datum,
        trigger_metadata: Mapping[str, Datum] | None = None,
        inputs: Mapping[str, Any] | None = None,
        *,
        outputs: dict[str, Any] | None = None,
        invocation_id: str | None = None,
        trace_parent: str | None = None,
        retry_context: RetryContext | None = None,
        reason: str = "",
    ) -> Any:
        """Decode `trigger`, call the function and return its raw return value.

        `inputs` are other IN bindings already in their decoded form (e.g. the durableClient JSON
        string), by parameter name. Values set on `Out` parameters are stored into `outputs`.
        Raises InvocationError (InvocationTimeout on functionTimeout) when the invocation fails.
        """
        if self._closed:
            raise RuntimeError("the invoker is closed")
        invocation_id = invocation_id or str(uuid.uuid4())
        log.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", spec.name, reason or spec.trigger_type, invocation_id)
        started = time.perf_counter()
        try:
            result = await self._invoke(
                spec, trigger, trigger_metadata, inputs, outputs, invocation_id, trace_parent, retry_context
            )
        except InvocationError:
            self._log_done(spec, invocation_id, started, ok=False)
            raise
        except asyncio.CancelledError:
            self._log_done(spec, invocation_id, started, ok=False)
            raise
        self._log_done(spec, invocation_id, started, ok=True)
        return result

    async def _invoke(
        self,
        spec: FunctionSpec,
        trigger: Datum,
        trigger_metadata: Mapping[str, Datum] | None,
        inputs: Mapping[str, Any] | None,
        outputs: dict[str, Any] | None,
        invocation_id: str,
        trace_parent: str | None,
        retry_context: RetryContext | None,
    ) -> Any:
        def fail(message: str) -> InvocationError:
            return InvocationError(spec.name, invocation_id, message)

        converter = binding_converter(spec.trigger_type)
        if converter is None:
            raise fail(f"no converter for trigger type {spec.trigger_type!r}")
        try:
            args: dict[str, Any] = {
                spec.trigger["name"]: converter.decode(trigger, trigger_metadata=dict(trigger_metadata or {}))
            }
        except Exception as exc:
            raise fail(f"decoding the {spec.trigger_type} trigger failed: {exc!r}") from exc
        supplied = dict(inputs or {})
        for binding in spec.input_bindings():
            name = binding["name"]
            if name not in supplied:
                raise fail(f"no value supplied for the {binding.get('type')} input {name!r}")
            args[name] = supplied.pop(name)
        if supplied:
            raise fail(f"unexpected inputs {sorted(supplied)}")
        out_objects = {b["name"]: Out() for b in spec.output_bindings()}
        args.update(out_objects)
        if spec.requires_context:
            args["context"] = Context(
                spec.name,
                spec.directory,
                invocation_id,
                TraceContext(new_traceparent(trace_parent)),
                retry_context or RetryContext(),
            )

        try:
            result = await self._call(spec, args, invocation_id)
        except InvocationError:
            raise
        except Exception as exc:
            log.error("Function 'Functions.%s' (Id=%s) raised", spec.name, invocation_id, exc_info=exc)
            raise fail(f"{type(exc).__name__}: {exc}") from exc
        if result is not None and not spec.has_return:
            raise fail(f"function {spec.name!r} without a $return binding returned a non-None value")
        if outputs is not None:
            outputs.update({name: out.get() for name, out in out_objects.items()})
        return result

    async def _call(self, spec: FunctionSpec, args: dict[str, Any], invocation_id: str) -> Any:
        timeout = self.function_timeout.total_seconds() if self.function_timeout else None
        if spec.is_async:
            _thread_local.invocation_id = invocation_id
            task = asyncio.ensure_future(spec.user_function(**args))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            try:
                return await asyncio.wait_for(task, timeout)
            except TimeoutError:
                raise self._timed_out(spec, invocation_id, cancelling=True) from None
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            self._executor, functools.partial(_run_sync, invocation_id, spec.user_function, args)
        )
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            self.overrunning.add(invocation_id)
            future.add_done_callback(lambda _: self.overrunning.discard(invocation_id))
            raise self._timed_out(spec, invocation_id, cancelling=False) from None

    def _timed_out(self, spec: FunctionSpec, invocation_id: str, *, cancelling: bool) -> InvocationTimeout:
        limit = self.function_timeout
        log.error(
            "Timeout value of %s exceeded by function 'Functions.%s' (Id: '%s'). %s",
            limit,
            spec.name,
            invocation_id,
            "Initiating cancellation."
            if cancelling
            else "A sync function cannot be cancelled; its thread keeps running (Azure would restart the worker).",
        )
        return InvocationTimeout(spec.name, invocation_id, f"timeout value of {limit} exceeded")

    @staticmethod
    def _log_done(spec: FunctionSpec, invocation_id: str, started: float, *, ok: bool) -> None:
        duration = round((time.perf_counter() - started) * 1000)
        log.info(
            "Executed 'Functions.%s' (%s, Id=%s, Duration=%dms)",
            spec.name,
            "Succeeded" if ok else "Failed",
            invocation_id,
            duration,
        )

    async def close(self) -> None:
        """Cancel in-flight async invocations and stop the thread pool (running sync calls are abandoned)."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)
