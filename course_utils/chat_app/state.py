"""The app's shared state: request and token counters, conversations, and (Redis only) answers being streamed.

`MemoryState` serves one process (the default). `RedisState` keeps the same things in Redis, so every worker on every
host sees the same limits and histories, and an answer can be read from any of them. Requests per minute are counted
with the generic cell rate algorithm (no minute boundary to straddle); output tokens per UTC day, reserved before the
answer and settled after it.
"""

from __future__ import annotations

import importlib
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

DAY = 86_400.0
PREFIX = "course:"  # every key this app writes, so it can share a Redis with other things


def gcra(tat: float, now: float, limit: int) -> tuple[float, int | None]:
    """One request through the generic cell rate algorithm: `limit` per minute, all of them at once if need be.

    `tat` is when the client's allowance is whole again. Unlike a fixed window (reset on the minute), there is no
    boundary to straddle: `limit` quick requests pass, the next one waits until one minute/limit has drained.
    Returns the new `tat`, and the whole seconds to wait if this request is refused.
    """
    interval = 60.0 / limit
    tat = max(tat, now)
    if tat + interval - now > 60.0 + 1e-9:
        return tat, max(1, math.ceil(tat + interval - now - 60.0))
    return tat + interval, None


def retry_after(window: float, now: float) -> int:
    """Whole seconds until the current fixed window of `window` seconds ends (at least 1)."""
    return max(1, math.ceil(window - now % window))


@dataclass
class MemoryState:
    """Counters and conversations in this process only: right for one worker, wrong for two."""

    history_turns: int = 40
    history_seconds: float = DAY
    _minutes: dict[str, float] = field(default_factory=dict)  # per client: when its allowance is whole again
    _days: dict[tuple[str, int], int] = field(default_factory=dict)
    _conversations: dict[str, tuple[float, list[dict[str, str]]]] = field(default_factory=dict)
    _locks: set[str] = field(default_factory=set)

    async def count_request(self, client: str, limit: int) -> int | None:
        """Count one request against `limit` per minute; seconds to wait if that is too many, else None."""
        now = time.time()
        tat, wait = gcra(self._minutes.get(client, 0.0), now, limit)
        if wait is not None:
            return wait
        if len(self._minutes) > 10_000:  # clients idle for a minute are back to a full allowance anyway
            self._minutes = {k: v for k, v in self._minutes.items() if v > now}
        self._minutes[client] = tat
        return None

    async def reserve_tokens(self, client: str, want: int, quota: int) -> int:
        """Set aside up to `want` of today's output tokens; how many were granted (0: none left)."""
        key = (client, int(time.time() // DAY))
        granted = max(0, min(want, quota - self._days.get(key, 0)))
        self._days[key] = self._days.get(key, 0) + granted
        return granted

    async def settle_tokens(self, client: str, reserved: int, used: int) -> None:
        """Give back what a reservation did not use (or charge what it overran)."""
        key = (client, int(time.time() // DAY))
        self._days[key] = max(0, self._days.get(key, 0) + used - reserved)

    async def tokens_used(self, client: str) -> int:
        """Output tokens counted against `client` today."""
        return self._days.get((client, int(time.time() // DAY)), 0)

    async def history(self, client: str, conversation: str) -> list[dict[str, str]]:
        """The stored turns of a conversation (none if unknown or too old)."""
        stamp, turns = self._conversations.get(f"{client}|{conversation}", (0.0, []))
        return list(turns) if time.time() - stamp < self.history_seconds else []

    async def begin_turn(self, client: str, conversation: str, ttl: float) -> bool:
        """Claim the conversation for one answer; False if another answer to it is still running."""
        key = f"{client}|{conversation}"
        if key in self._locks:
            return False
        self._locks.add(key)
        return True

    async def end_turn(self, client: str, conversation: str, new_turns: list[dict[str, str]] | None) -> None:
        """Release the conversation, first appending `new_turns` (None: the turn failed and leaves no trace)."""
        key = f"{client}|{conversation}"
        if new_turns:
            turns = bounded([*await self.history(client, conversation), *new_turns], self.history_turns)
            self._conversations[key] = (time.time(), turns)
        self._locks.discard(key)

    async def close(self) -> None:
        """Nothing to close in memory."""


def bounded(turns: list[dict[str, str]], limit: int) -> list[dict[str, str]]:
    """The last `limit` turns, cut at a user turn, so the history still starts with the user."""
    turns = turns[-limit:] if limit > 0 else []
    while turns and turns[0]["role"] != "user":
        turns = turns[1:]
    return turns


# Reserve atomically: two workers reserving at once must not both get the last tokens of the day.
_RESERVE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local granted = math.max(0, math.min(tonumber(ARGV[1]), tonumber(ARGV[2]) - used))
if granted > 0 then
  redis.call('INCRBY', KEYS[1], granted)
  redis.call('EXPIRE', KEYS[1], 2 * 86400)
end
return granted
"""


# The same algorithm as `gcra`, run inside Redis with Redis's clock: atomic, and the workers' clocks do not matter.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local interval = 60.0 / tonumber(ARGV[1])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
if tat + interval - now > 60.0 + 1e-9 then
  return math.max(1, math.ceil(tat + interval - now - 60.0))
end
redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', math.ceil((tat + interval - now) * 1000) + 1)
return 0
"""


class RedisState:
    """The same counters and conversations in Redis, shared by every worker that points at it."""

    def __init__(self, url: str, history_turns: int = 40, history_seconds: float = DAY) -> None:
        """Connect lazily to the Redis at `url` (redis://host:port/db)."""
        # The [deploy] extra, not a runtime dependency: only a deployment with --redis needs it, so it is imported
        # by name here, where a missing package becomes a sentence instead of an ImportError at `import`.
        try:
            aioredis = importlib.import_module("redis.asyncio")
        except ImportError:
            raise RuntimeError("--redis needs the redis package: pip install 'streaming-with-claude[deploy]'") from None
        # A blocking pool: every reader of an answer holds a connection while it waits for the next entry, so under
        # load a request waits its turn for one (up to 5 s) instead of failing with "Too many connections".
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=4096, timeout=5)
        self.redis = aioredis.Redis(connection_pool=pool)
        self.url = url
        self.history_turns, self.history_seconds = history_turns, history_seconds
        self._reserve = self.redis.register_script(_RESERVE)
        self._gcra = self.redis.register_script(_GCRA)

    async def count_request(self, client: str, limit: int) -> int | None:
        """Count one request against `limit` per minute; seconds to wait if that is too many, else None."""
        wait = int(await self._gcra(keys=[f"{PREFIX}rpm:{client}"], args=[limit]))
        return wait or None

    def _day_key(self, client: str) -> str:
        return f"{PREFIX}tpd:{client}:{int(time.time() // DAY)}"

    async def reserve_tokens(self, client: str, want: int, quota: int) -> int:
        """Set aside up to `want` of today's output tokens; how many were granted (0: none left)."""
        return int(await self._reserve(keys=[self._day_key(client)], args=[want, quota]))

    async def settle_tokens(self, client: str, reserved: int, used: int) -> None:
        """Give back what a reservation did not use (or charge what it overran)."""
        if used != reserved:
            await self.redis.incrby(self._day_key(client), used - reserved)

    async def tokens_used(self, client: str) -> int:
        """Output tokens counted against `client` today."""
        return int(await self.redis.get(self._day_key(client)) or 0)

    async def history(self, client: str, conversation: str) -> list[dict[str, str]]:
        """The stored turns of a conversation (none if unknown or expired)."""
        raw = await self.redis.get(f"{PREFIX}conv:{client}:{conversation}")
        return json.loads(raw) if raw else []

    async def begin_turn(self, client: str, conversation: str, ttl: float) -> bool:
        """Claim the conversation for one answer; False if another answer to it is still running (on any worker)."""
        return bool(await self.redis.set(f"{PREFIX}lock:{client}:{conversation}", 1, nx=True, ex=max(1, int(ttl))))

    async def end_turn(self, client: str, conversation: str, new_turns: list[dict[str, str]] | None) -> None:
        """Release the conversation, first appending `new_turns` (None: the turn failed and leaves no trace)."""
        if new_turns:
            turns = bounded([*await self.history(client, conversation), *new_turns], self.history_turns)
            await self.redis.set(
                f"{PREFIX}conv:{client}:{conversation}", json.dumps(turns), ex=max(1, int(self.history_seconds))
            )
        await self.redis.delete(f"{PREFIX}lock:{client}:{conversation}")

    async def close(self) -> None:
        """Close the connection pool."""
        await self.redis.aclose()


State = MemoryState | RedisState


def make_state(redis_url: str | None, history_turns: int, history_seconds: float) -> State:
    """Redis when a URL is given, else memory."""
    if redis_url:
        return RedisState(redis_url, history_turns, history_seconds)
    return MemoryState(history_turns, history_seconds)


def describe(state: Any) -> str:
    """Where the state lives, for the log (no password)."""
    if isinstance(state, RedisState):
        from urllib.parse import urlsplit

        parts = urlsplit(state.url)
        return f"Redis at {parts.hostname}:{parts.port or 6379}"
    return "this process's memory"
