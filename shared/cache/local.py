"""A small in-process TTL cache with LRU eviction: the fallback while Redis is unreachable.

It is a coalescing buffer with a short TTL, never a second source of truth: other instances'
invalidations cannot reach it, so callers only put public, briefly-stale-tolerant values in it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class LocalCache:
    def __init__(self, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._max_entries = max_entries
        self._clock = clock

    def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if expires_at <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def set(self, key: str, value: bytes, ttl_s: float) -> None:
        if ttl_s <= 0:
            return
        self._entries[key] = (self._clock() + ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def delete(self, *keys: str) -> None:
        for key in keys:
            self._entries.pop(key, None)

    def delete_prefix(self, prefix: str) -> None:
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]
