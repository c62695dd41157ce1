"""Translation of database errors into domain errors, in the data layer.

Repositories run statements inside `translate_errors()`; the HTTP layer then never sees asyncpg.
A repository may pass `by_constraint` to turn a named constraint into a more specific error
(for example the bookings exclusion constraint into SlotTaken).

Values the database cannot take (a NUL in text, an instant or number out of range) are input the
API models should have refused; `translate_data_errors()`, which every connection of
shared/db/database.py applies, turns any that slip through into 422 rather than 500.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import asyncpg

from shared.errors import AlreadyExists, Conflict, DomainError, ReferenceNotFound, ServiceUnavailable, ValidationFailed

ErrorFactory = Callable[[], DomainError]

_DATA_ERRORS: tuple[tuple[type[Exception], ErrorFactory], ...] = (
    # 22021 (a NUL in text) and 22P05 (a NUL escape in jsonb): characters the database cannot store.
    (
        asyncpg.CharacterNotInRepertoireError,
        lambda: ValidationFailed("a text contains a character that cannot be stored"),
    ),
    (
        asyncpg.UntranslatableCharacterError,
        lambda: ValidationFailed("a text contains a character that cannot be stored"),
    ),
    (asyncpg.DatetimeFieldOverflowError, lambda: ValidationFailed("a date or time is out of range")),
    (asyncpg.NumericValueOutOfRangeError, lambda: ValidationFailed("a number is out of range")),
    (asyncpg.StringDataRightTruncationError, lambda: ValidationFailed("a text is too long")),
)

_BY_CLASS: tuple[tuple[type[Exception], ErrorFactory], ...] = (
    *_DATA_ERRORS,
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
    """The domain error for a database exception, or None if it is not a known constraint or data error."""
    constraint = getattr(exc, "constraint_name", None)
    if by_constraint and isinstance(constraint, str) and constraint in by_constraint:
        return by_constraint[constraint]()
    return _by_class(exc, _BY_CLASS)


def _out_of_range_argument(exc: Exception) -> bool:
    """asyncpg itself refused to encode a bind parameter whose value overflows its type (an int beyond
    int8, an instant before year 1 in UTC, a Decimal whose exponent numeric cannot hold). It raises
    the bare class 22 DataError from the OverflowError or ValueError; a wrong type (a TypeError) is
    the caller's bug and is left alone."""
    return type(exc) is asyncpg.DataError and isinstance(exc.__cause__, OverflowError | ValueError)


def _by_class(exc: Exception, table: tuple[tuple[type[Exception], ErrorFactory], ...]) -> DomainError | None:
    if _out_of_range_argument(exc):
        return ValidationFailed("a value is outside the range the database can store")
    for exc_class, factory in table:
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


@contextmanager
def translate_data_errors() -> Iterator[None]:
    """Only the data errors (values the database cannot take) as 422; constraint errors pass as they are."""
    try:
        yield
    except asyncpg.PostgresError as exc:
        error = _by_class(exc, _DATA_ERRORS)
        if error is None:
            raise
        raise error from exc
