"""Keyset cursors: the sort key of a page's last row, handed to the client as an opaque token.

A cursor is the key's JSON, base64url without padding. Each list declares the key's shape once, as
a pydantic type (`Keyset(tuple[BoundedDatetime, uuid.UUID])`), and decoding validates a returned
cursor against it, ranges included: a cursor is client input, and one that this list could not have
issued (wrong shape, another list's, an instant outside the bounded range) is 422 `invalid_cursor`
before it reaches SQL.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Generic, TypeVar

from pydantic import StringConstraints, TypeAdapter

from shared.errors import ValidationFailed

Key = TypeVar("Key")

# The query parameter every paged list accepts.
CursorParam = Annotated[str, StringConstraints(max_length=200)]


class InvalidCursor(ValidationFailed):
    code = "invalid_cursor"
    title = "The cursor is not one this list issued"


class Keyset(Generic[Key]):
    """The cursors of one list, whose sort key has the pydantic type `shape`."""

    def __init__(self, shape: Any) -> None:
        self._adapter: TypeAdapter[Key] = TypeAdapter(shape)

    def encode(self, key: Key) -> str:
        return base64.urlsafe_b64encode(self._adapter.dump_json(key)).decode().rstrip("=")

    def decode(self, cursor: str) -> Key:
        """The key `cursor` carries; InvalidCursor unless it has this list's shape and ranges."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            return self._adapter.validate_json(raw)
        except (ValueError, binascii.Error):  # pydantic's ValidationError is a ValueError
            raise InvalidCursor() from None
