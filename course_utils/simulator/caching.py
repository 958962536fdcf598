"""Prompt caching as the Messages API does it: prefixes marked with `cache_control`, written once, read within a TTL.

Sources (read 2026-12-01):
- [skills] anthropics/skills, skills/claude-api/shared/prompt-caching.md: render order tools -> system -> messages,
  "the cache key is derived from the exact bytes of the rendered prompt up to each cache_control breakpoint",
  max 4 breakpoints, top-level `cache_control` auto-places on the last cacheable block, model-dependent minimum
  ("shorter prefixes silently won't cache ... cache_creation_input_tokens: 0"), `input_tokens` is the uncached
  remainder and total = input + creation + read, the 20-block lookback window, the invalidation hierarchy,
  `max_tokens: 0` pre-warming, caches are model-scoped.
- [docs] platform.claude.com/docs/en/build-with-claude/prompt-caching: automatic caching "moves [the breakpoint]
  forward as conversations grow"; hits are checked "at all previous content block boundaries (up to approximately
  20 blocks before your explicit breakpoint)"; the lifetime "is refreshed each time the cached content is used".
- [sdk] anthropic 2.11 types/usage.py (cache_creation, cache_creation_input_tokens, cache_read_input_tokens),
  types/cache_creation.py (ephemeral_5m_input_tokens, ephemeral_1h_input_tokens),
  types/cache_control_ephemeral_param.py (type "ephemeral", ttl "5m" | "1h", default "5m").
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .tokens import count_request_tokens

__all__ = [
    "CacheStore",
    "CacheUsage",
    "Breakpoint",
    "breakpoints",
    "cache_control_error",
    "strip_cache_control",
    "TTL_SECONDS",
    "LOOKBACK_BLOCKS",
    "MAX_BREAKPOINTS",
]

# [sdk] cache_control_ephemeral_param.py: the two TTLs, "5m" the default.
TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
# [skills] "Each breakpoint walks backward at most 20 content blocks to find a prior cache entry."
LOOKBACK_BLOCKS = 20
# [skills] "Max 4 cache_control breakpoints per request."
MAX_BREAKPOINTS = 4
# Thinking blocks are part of the prefix but cannot carry a marker, so automatic caching skips them.
_UNMARKABLE = {"thinking", "redacted_thinking"}
# The store never grows without bound when a long-running simulator serves many distinct prefixes.
_MAX_ENTRIES = 4096


@dataclass(frozen=True)
class CacheUsage:
    """The cache side of a response's `usage`: the uncached remainder plus what was read and written."""

    input_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    ephemeral_5m_input_tokens: int = 0
    ephemeral_1h_input_tokens: int = 0

    @property
    def total_input_tokens(self) -> int:
        """The whole prompt: [skills] "Total prompt size = input_tokens + cache_creation + cache_read"."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    def usage_fields(self) -> dict[str, Any]:
        """The fields as the wire's `usage` object spells them (SDK types/usage.py, cache_creation.py)."""
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.ephemeral_5m_input_tokens,
                "ephemeral_1h_input_tokens": self.ephemeral_1h_input_tokens,
            },
        }


@dataclass(frozen=True)
class Breakpoint:
    """A cache breakpoint: the index of its block in render order, its TTL, and where it sits in the body."""

    index: int
    ttl: str
    path: str


@dataclass(frozen=True)
class _Block:
    """One block of the rendered prompt, in render order."""

    path: str
    section: str  # "tools", "system" or "messages"
    position: tuple[int, int | None]  # (index in its list, content index or None for a whole string)
    marker: Any  # the block's cache_control value, or None
    markable: bool  # whether a cache_control may sit here (automatic caching picks the last such block)
    identity: str  # what the prefix hash covers: the block without its marker, plus its role


@dataclass
class _Entry:
    """A written prefix: when it expires and with which TTL it was last written or refreshed."""

    expires: float
    ttl: str


def strip_cache_control(body: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of the body without any `cache_control` (top level, tools, system and content blocks)."""
    clean = copy.deepcopy(body)
    clean.pop("cache_control", None)
    for tool in clean.get("tools") or []:
        if isinstance(tool, dict):
            tool.pop("cache_control", None)
    if isinstance(clean.get("system"), list):
        for block in clean["system"]:
            if isinstance(block, dict):
                block.pop("cache_control", None)
    for message in clean.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for block in content:
                if isinstance(block, dict):
                    block.pop("cache_control", None)
                    # tool_result content is itself a list of blocks that may carry markers.
                    if isinstance(block.get("content"), list):
                        for inner in block["content"]:
                            if isinstance(inner, dict):
                                inner.pop("cache_control", None)
    return clean


def _identity(block: Any, role: str = "") -> str:
    """Stable text for a block without its marker: the marker is not part of the cache key, so moving a breakpoint
    forward (the multi-turn pattern [skills] recommends) still finds the previous turn's prefix."""
    if isinstance(block, str):
        block = {"text": block, "type": "text"}  # a string is one text block: the same prompt, the same prefix
    if isinstance(block, dict):
        block = {k: v for k, v in sorted(block.items()) if k != "cache_control"}
        if isinstance(block.get("content"), list):
            block["content"] = [
                {k: v for k, v in b.items() if k != "cache_control"} if isinstance(b, dict) else b
                for b in block["content"]
            ]
    # Top-level keys are sorted (the SDK's field order is not prompt text) but nested values keep their order:
    # [skills] lists a reordered JSON key inside the prompt as a silent invalidator.
    return role + "\x00" + json.dumps(block, ensure_ascii=False, separators=(",", ":"))


def _blocks(body: dict[str, Any]) -> list[_Block]:
    """The prompt's blocks in render order: [skills] "Render order is: tools -> system -> messages"."""
    out: list[_Block] = []
    for i, tool in enumerate(body.get("tools") or []):
        marker = tool.get("cache_control") if isinstance(tool, dict) else None
        out.append(_Block(f"tools.{i}", "tools", (i, None), marker, True, _identity(tool)))
    system = body.get("system")
    if isinstance(system, str) and system:
        out.append(_Block("system", "system", (0, None), None, False, _identity(system)))
    elif isinstance(system, list):
        for j, block in enumerate(system):
            marker = block.get("cache_control") if isinstance(block, dict) else None
            out.append(_Block(f"system.{j}", "system", (j, None), marker, True, _identity(block)))
    for m, message in enumerate(body.get("messages") or []):
        role = str(message.get("role", "")) if isinstance(message, dict) else ""
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            # A string is one text block; it cannot carry a marker but automatic caching can still end on it.
            out.append(_Block(f"messages.{m}.content", "messages", (m, None), None, True, _identity(content, role)))
        elif isinstance(content, list):
            for j, block in enumerate(content):
                marker = block.get("cache_control") if isinstance(block, dict) else None
                kind = block.get("type") if isinstance(block, dict) else None
                out.append(
                    _Block(
                        f"messages.{m}.content.{j}",
                        "messages",
                        (m, j),
                        marker,
                        kind not in _UNMARKABLE,
                        _identity(block, role),
                    )
                )
    return out


def _ttl(marker: Any) -> str:
    """The TTL a marker asks for; [sdk] "Defaults to `5m`"."""
    ttl = marker.get("ttl") if isinstance(marker, dict) else None
    return ttl if ttl in TTL_SECONDS else "5m"


def breakpoints(body: dict[str, Any]) -> list[Breakpoint]:
    """The request's cache breakpoints in render order, including the automatic one of a top-level cache_control."""
    blocks = _blocks(body)
    found = {
        i: Breakpoint(i, _ttl(b.marker), b.path)
        for i, b in enumerate(blocks)
        if isinstance(b.marker, dict) and b.marker.get("type") == "ephemeral"
    }
    auto = body.get("cache_control")
    if isinstance(auto, dict) and auto.get("type") == "ephemeral":
        # [skills]/[sdk] "automatically applies a cache_control marker to the last cacheable block in the request".
        last = next((i for i in range(len(blocks) - 1, -1, -1) if blocks[i].markable), None)
        if last is not None and last not in found:
            found[last] = Breakpoint(last, _ttl(auto), blocks[last].path)
    return [found[i] for i in sorted(found)]


def cache_control_error(body: dict[str, Any]) -> str | None:
    """Why the body's cache_control markers would be a 400, or None when they are acceptable."""
    markers = [b for b in _blocks(body) if b.marker is not None]
    for block in markers:
        marker = block.marker
        if not isinstance(marker, dict) or marker.get("type") != "ephemeral":
            return f"{block.path}.cache_control.type: Input should be 'ephemeral'"
        if "ttl" in marker and marker["ttl"] not in TTL_SECONDS:
            return f"{block.path}.cache_control.ttl: Input should be '5m' or '1h'"
    if len(markers) > MAX_BREAKPOINTS:
        return f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {len(markers)}."
    return None


def _partial_body(body: dict[str, Any], blocks: list[_Block], end: int) -> dict[str, Any]:
    """The prefix of a (marker-free) body up to and including block `end`, shaped like a request body so the
    simulator's own token counter measures it the same way it measures whole requests."""
    block = blocks[end]
    index, inner = block.position
    tools = body.get("tools") or []
    if block.section == "tools":
        return {"tools": tools[: index + 1]}
    partial: dict[str, Any] = {"tools": tools} if tools else {}
    system = body.get("system")
    if block.section == "system":
        partial["system"] = system[: index + 1] if isinstance(system, list) else system
        return partial
    if system:
        partial["system"] = system
    messages = body.get("messages") or []
    last = dict(messages[index])
    if inner is not None:
        last["content"] = last["content"][: inner + 1]
    partial["messages"] = [*messages[:index], last]
    return partial


class CacheStore:
    """The simulator's prompt cache: prefix hashes with expiry times, shared by every request to one server."""

    def __init__(self, now: Callable[[], float] = time.monotonic, max_entries: int = _MAX_ENTRIES) -> None:
        """An empty cache whose clock is `now` (tests pass a fake one so they never sleep)."""
        self._now = now
        self._max_entries = max_entries
        self._entries: dict[str, _Entry] = {}
        # The server answers from one asyncio loop, but tests may reset from another thread.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many prefixes are written and not yet expired."""
        with self._lock:
            now = self._now()
            return sum(1 for entry in self._entries.values() if entry.expires > now)

    def reset(self) -> None:
        """Forget every cached prefix."""
        with self._lock:
            self._entries.clear()

    def usage(
        self,
        body: dict[str, Any],
        *,
        model: str,
        min_tokens: int,
        count: Callable[[dict[str, Any]], int] = count_request_tokens,
    ) -> CacheUsage:
        """Read and write this request's cached prefixes and return the cache side of its usage.

        `count` measures a request body (the simulator's `count_request_tokens`); it is called on the marker-free
        body and on marker-free prefixes of it, so with no cache_control at all `input_tokens == count(body)`.
        A `max_tokens: 0` request is handled like any other: [skills] it "runs prefill — writing the cache".
        """
        blocks = _blocks(body)
        points = breakpoints(body)
        # Markers are not prompt text: they add no tokens and are not part of any prefix's identity.
        clean = strip_cache_control(body)
        total = count(clean)
        if not points:
            return CacheUsage(input_tokens=total)

        hashes = self._prefix_hashes(body, blocks, model)
        sizes: dict[int, int] = {}

        def size(index: int) -> int:
            # Cumulative tokens up to and including a block, measured once per request and never above the total.
            if index < 0:
                return 0
            if index not in sizes:
                sizes[index] = min(total, count(_partial_body(clean, blocks, index)))
            return sizes[index]

        with self._lock:
            now = self._now()
            self._expire(now)
            # [docs]/[skills] each breakpoint looks for the longest live prefix at or up to 20 blocks before it.
            read_end, read_ttl = -1, "5m"
            for point in points:
                for index in range(point.index, max(-1, point.index - LOOKBACK_BLOCKS - 1), -1):
                    if hashes[index] in self._entries:
                        if index > read_end:
                            read_end, read_ttl = index, point.ttl
                        break
            if read_end >= 0:
                self._touch(hashes[read_end], read_ttl, now)  # [docs] a read refreshes the lifetime
            read = size(read_end)

            written, done, buckets = 0, read, {"5m": 0, "1h": 0}
            for point in points:
                tokens = size(point.index)
                if tokens < min_tokens:
                    continue  # [skills] shorter prefixes "silently won't cache": no error, nothing written
                if point.index <= read_end:
                    # Inside what was just read: keep (or start) an entry there at no charge.
                    self._touch(hashes[point.index], point.ttl, now)
                    continue
                # The span since the previous written boundary is billed at this breakpoint's TTL.
                buckets[point.ttl] += tokens - done
                written += tokens - done
                done = tokens
                self._touch(hashes[point.index], point.ttl, now)
            self._evict()

        return CacheUsage(
            input_tokens=max(0, total - read - written),
            cache_creation_input_tokens=written,
            cache_read_input_tokens=read,
            ephemeral_5m_input_tokens=buckets["5m"],
            ephemeral_1h_input_tokens=buckets["1h"],
        )

    @staticmethod
    def _prefix_hashes(body: dict[str, Any], blocks: list[_Block], model: str) -> list[str]:
        """A running hash per block: the model id and every block up to and including it.

        [skills] caches are model-scoped, and the invalidation hierarchy says `speed` changes only the system and
        messages tiers while `tool_choice` and turning thinking on or off change only the messages tier, so those
        settings are mixed into the blocks of the tiers they invalidate and nowhere else.
        """
        thinking = body.get("thinking")
        salts = {
            "tools": "",
            "system": json.dumps({"speed": body.get("speed")}),
            "messages": json.dumps(
                {
                    "speed": body.get("speed"),
                    "tool_choice": body.get("tool_choice"),
                    "thinking": thinking.get("type") if isinstance(thinking, dict) else None,
                },
                sort_keys=True,
            ),
        }
        running = hashlib.sha256(("model\x00" + model).encode()).hexdigest()
        out: list[str] = []
        for block in blocks:
            step = "\x00".join((running, block.section, salts[block.section], block.identity))
            running = hashlib.sha256(step.encode()).hexdigest()
            out.append(running)
        return out

    def _touch(self, key: str, ttl: str, now: float) -> None:
        """Write or refresh an entry; a refresh never shortens a 1 h entry to 5 min."""
        entry = self._entries.get(key)
        if entry is not None and TTL_SECONDS[entry.ttl] > TTL_SECONDS[ttl]:
            ttl = entry.ttl
        self._entries[key] = _Entry(expires=now + TTL_SECONDS[ttl], ttl=ttl)

    def _expire(self, now: float) -> None:
        """Drop entries whose TTL has run out."""
        for key in [k for k, e in self._entries.items() if e.expires <= now]:
            del self._entries[key]

    def _evict(self) -> None:
        """Keep the store bounded by dropping the entries closest to expiry."""
        if len(self._entries) > self._max_entries:
            ordered = sorted(self._entries, key=lambda k: self._entries[k].expires)
            for key in ordered[: len(self._entries) - self._max_entries]:
                del self._entries[key]
