"""Forge a keyset cursor the way a client could: take one a list issued and swap its instant."""

from __future__ import annotations

import base64
import re

_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})")


def with_instant(cursor: str, instant: str) -> str:
    """`cursor` with its (first) ISO instant replaced by `instant`, whatever the cursor's layout."""
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    forged = _INSTANT.sub(instant, raw, count=1)
    assert forged != raw, f"no instant in the cursor {raw!r}"
    return base64.urlsafe_b64encode(forged.encode()).decode().rstrip("=")
