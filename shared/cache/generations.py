"""Generation-keyed cache entries: the Redis side of `Cache.get_or_load_versioned`.

A namespace (such as `mentors:list`) owns one generation key and any number of variant entries
(one per filter/sort/page), each stored under the generation that was current when it was read:

    {mentors:list}:gen            the generation: a number that only grows
    {mentors:list}:g<gen>:<var>   an entry: "<recompute ms>:" + the value bytes, with the TTL
    {mentors:list}:lock:g<gen>:<var>   who is recomputing that entry (SET NX PX, token-released)

A write bumps the generation after it commits, in one atomic step. A read fetches the generation
and its entry in one script call, so a read that starts after the bump was acknowledged can only
see entries loaded after the write: there is no window in which a slow loader puts pre-write data
back under the key readers use, unlike delete-after-write (performance.md §5.1).

On a miss the same call takes the entry's lock if it is free, and answers whether the caller's
process holds it (then it recomputes the entry and stores it, releasing the lock, in a second
call) or another process does (then it waits for the entry). A miss thus costs two round trips.
The lock's token names the process, not the caller: concurrent misses of one entry in a process
share one load, and whichever caller runs it stores and releases the lock whichever caller's read
took.

The braces are a Redis Cluster hash tag: every key of a namespace lives in one slot, which the
scripts need because they compute the entry's key from the generation they read.

Generations come from Redis's clock (microseconds) and are forced to grow by at least one, so a
generation key that was lost (eviction, restart) comes back larger than any generation used before
and can never re-expose an old entry. That is also why a generation key may expire: it lives
`GENERATION_TTL_MS` past its creation or last bump, far longer than any entry, so namespaces made
per caller (the login cache's one per email) cannot fill Redis with keys that never go.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

GENERATION_TTL_MS = 86_400_000  # a day; every entry's TTL is minutes

_READ = """
local gen = redis.call('GET', KEYS[1])
if not gen then
  local now = redis.call('TIME')
  redis.call('SET', KEYS[1], now[1] .. string.format('%06d', tonumber(now[2])), 'NX', 'PX', GENERATION_TTL_MS)
  gen = redis.call('GET', KEYS[1])
end
local key = ARGV[1] .. gen .. ARGV[2]
local value = redis.call('GET', key)
if value then return {gen, value, redis.call('PTTL', key)} end
local lock = ARGV[3] .. gen .. ARGV[2]
if redis.call('SET', lock, ARGV[4], 'NX', 'PX', ARGV[5]) or redis.call('GET', lock) == ARGV[4] then
  return {gen, 1}
end
return {gen, 0}
"""

_BUMP = """
local now = redis.call('TIME')
local next_gen = tonumber(now[1] .. string.format('%06d', tonumber(now[2])))
local gen = tonumber(redis.call('GET', KEYS[1]) or '0')
if gen >= next_gen then next_gen = gen + 1 end
local text = string.format('%.0f', next_gen)
redis.call('SET', KEYS[1], text, 'PX', GENERATION_TTL_MS)
return text
"""

# Store a recomputed entry (TTL in ms) and release our lock in one round trip.
_STORE = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class _Script:
    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, client: Redis, keys: list[str], args: list[str | bytes]) -> object:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.eval(self.source, len(keys), *keys, *args)


def _with_generation_ttl(source: str) -> str:
    return source.replace("GENERATION_TTL_MS", str(GENERATION_TTL_MS))


READ, BUMP = _Script(_with_generation_ttl(_READ)), _Script(_with_generation_ttl(_BUMP))
RELEASE, STORE = _Script(_RELEASE), _Script(_STORE)


@dataclass(frozen=True, slots=True)
class Keys:
    namespace: str
    variant: str

    @property
    def generation(self) -> str:
        return f"{{{self.namespace}}}:gen"

    def entry(self, generation: str) -> str:
        return f"{{{self.namespace}}}:g{generation}:{self.variant}"

    def lock(self, generation: str) -> str:
        return f"{{{self.namespace}}}:lock:g{generation}:{self.variant}"

    def read_args(self, token: str, lock_ttl_ms: int) -> list[str | bytes]:
        """READ's arguments: how to name the entry and its lock, and the lock to take on a miss."""
        return [f"{{{self.namespace}}}:g", f":{self.variant}", f"{{{self.namespace}}}:lock:g", token, str(lock_ttl_ms)]


@dataclass(frozen=True, slots=True)
class Entry:
    generation: str
    value: bytes | None = None
    recompute_ms: int = 0
    ttl_ms: int = 0
    locked: bool = False  # a miss whose lock the reader's process holds: it is this process's to load


def parse_read(reply: object) -> Entry:
    """The READ script's reply as an Entry (value None on a miss)."""
    assert isinstance(reply, list)
    generation = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
    if len(reply) < 3:
        return Entry(generation, locked=reply[1] == 1)
    recompute_ms, value = unpack(reply[1])
    return Entry(generation, value, recompute_ms, int(reply[2]))


def pack(recompute_ms: int, value: bytes) -> bytes:
    return b"%d:" % recompute_ms + value


def unpack(stored: bytes) -> tuple[int, bytes]:
    head, _, value = stored.partition(b":")
    return int(head), value


def refresh_early(entry: Entry, beta: float, rand: float | None = None) -> bool:
    """XFetch (Vattani et al., PVLDB 8(8), 2015): recompute before expiry with a probability that
    rises as the expiry nears and with how long a recompute takes; one reader does, early, instead
    of every reader at once when the key expires."""
    if entry.ttl_ms < 0:  # no expiry set
        return False
    draw = rand if rand is not None else random.random()
    return entry.recompute_ms * beta * -math.log(max(draw, 1e-12)) >= entry.ttl_ms
