"""Domain errors. Services raise these; the HTTP layer maps them to problem+json by class.

Each class carries a stable machine-readable `code` and the HTTP status it stands for, so a subclass
such as `SlotTaken(Conflict)` inherits its mapping and only names its own code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class DomainError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str | None = None, *, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = dict(extra or {})


class ValidationFailed(DomainError):
    status = 422
    code = "validation_failed"
    title = "The request is not valid"


class Unauthenticated(DomainError):
    status = 401
    code = "unauthenticated"
    title = "Authentication required"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    title = "Not allowed"


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict with the current state"


class AlreadyExists(Conflict):
    code = "already_exists"
    title = "It already exists"


class ReferenceNotFound(ValidationFailed):
    """A row refers to another that does not exist (a foreign key violation)."""

    code = "reference_not_found"
    title = "A referenced record does not exist"


class TooManyRequests(DomainError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after_s: int = 1) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class ServiceUnavailable(DomainError):
    status = 503
    code = "service_unavailable"
    title = "Temporarily unavailable"

    def __init__(self, detail: str | None = None, *, retry_after_s: int = 1) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s
