"""Translation of database constraint errors into domain errors, in the data layer.

Repositories run statements inside `translate_errors()`; the HTTP layer then never sees asyncpg.
A repository may pass `by_constraint` to turn a named constraint into a more specific error
(for example the bookings exclusion constraint into SlotTaken).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import asyncpg

from shared.errors import AlreadyExists, Conflict, DomainError, ReferenceNotFound, ServiceUnavailable, ValidationFailed

ErrorFactory = Callable[[], DomainError]

_BY_CLASS: tuple[tuple[type[Exception], ErrorFactory], ...] = (
    (asyncpg.UniqueViolationError, lambda: AlreadyExists()),
    (asyncpg.ExclusionViolationError, lambda: Conflict("it overlaps an existing record")),
    (asyncpg.ForeignKeyViolationError, lambda: ReferenceNotFound()),
    (asyncpg.CheckViolationError, lambda: ValidationFailed("a value is outside its allowed range")),
    (asyncpg.NotNullViolationError, lambda: ValidationFailed("a required value is missing")),
    # Concurrent writers can deadlock or fail serialisation; the caller may retry.
    (asyncpg.DeadlockDetectedError, lambda: Conflict("a concurrent change won; try again")),
    (asyncpg.SerializationError, lambda: Conflict("a concurrent change won; try again")),
    (asyncpg.TooManyConnectionsError, lambda: ServiceUnavailable("the database is busy")),
)


def to_domain_error(exc: Exception, by_constraint: Mapping[str, ErrorFactory] | None = None) -> DomainError | None:
    """The domain error for a database exception, or None if it is not a known constraint error."""
    constraint = getattr(exc, "constraint_name", None)
    if by_constraint and isinstance(constraint, str) and constraint in by_constraint:
        return by_constraint[constraint]()
    for exc_class, factory in _BY_CLASS:
        if isinstance(exc, exc_class):
            return factory()
    return None


@contextmanager
def translate_errors(by_constraint: Mapping[str, ErrorFactory] | None = None) -> Iterator[None]:
    try:
        yield
    except asyncpg.PostgresError as exc:
        error = to_domain_error(exc, by_constraint)
        if error is None:
            raise
        raise error from exc
