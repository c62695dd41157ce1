"""Log correlation: every record written during an invocation carries its invocation id."""

from __future__ import annotations

import logging
from contextvars import ContextVar

invocation_id: ContextVar[str | None] = ContextVar("invocation_id", default=None)


class InvocationIdFilter(logging.Filter):
    """Adds `invocation_id` to each record so formatters and exporters can correlate it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "invocation_id"):
            record.invocation_id = invocation_id.get()
        return True


def install() -> None:
    """Attach the filter to the root logger's handlers (idempotent)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, InvocationIdFilter) for f in handler.filters):
            handler.addFilter(InvocationIdFilter())
