"""Failures on demand: the simulator makes each error a real API can cause happen when a lesson or test asks."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

# Before the 200: an HTTP error the SDK may retry.
PRE_STREAM = {"overloaded": 529, "rate_limit": 429, "api_error": 500}
# After the 200, once `after` output tokens have been sent.
MID_STREAM = ("error_midstream", "disconnect_midstream", "stall_midstream")
KINDS = tuple(PRE_STREAM) + MID_STREAM

DEFAULT_AFTER = 10  # tokens sent before a mid-stream fault strikes
DEFAULT_STALL_SECONDS = 3600.0  # a stall lasts until the client gives up
MAX_QUEUED = 1000  # more than any lesson or test needs; keeps the queue (and its listing) small


class FaultError(ValueError):
    """A fault request that names an unknown kind or a bad number."""


@dataclass(frozen=True)
class Fault:
    """One failure to inject into one request."""

    kind: str
    after: int = DEFAULT_AFTER
    retry_after: float | None = None
    stall_seconds: float = DEFAULT_STALL_SECONDS

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise FaultError(f"unknown fault {self.kind!r}; expected one of: {', '.join(KINDS)}")
        if not isinstance(self.after, int) or isinstance(self.after, bool) or self.after < 0:
            raise FaultError(f"'after' must be a whole number of tokens >= 0, got {self.after!r}")
        if self.retry_after is not None and not _seconds(self.retry_after):
            raise FaultError(f"'retry_after' must be a number of seconds >= 0, got {self.retry_after!r}")
        if not _seconds(self.stall_seconds):
            raise FaultError(f"'stall_seconds' must be a number of seconds >= 0, got {self.stall_seconds!r}")

    @property
    def pre_stream(self) -> bool:
        """Whether the fault replaces the response before any byte of the body."""
        return self.kind in PRE_STREAM

    def to_dict(self) -> dict[str, Any]:
        """The fault as JSON-ready data."""
        return asdict(self)


def _seconds(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def fault_from_headers(headers: Mapping[str, str]) -> Fault | None:
    """The fault named by a request's `x-sim-fault` / `x-sim-fault-after` headers, if any."""
    kind = headers.get("x-sim-fault")
    if not kind:
        return None
    after = headers.get("x-sim-fault-after")
    try:
        tokens = int(after) if after is not None else DEFAULT_AFTER
    except ValueError as exc:
        raise FaultError(f"x-sim-fault-after must be a whole number, got {after!r}") from exc
    return Fault(kind.strip(), after=tokens)


class FaultQueue:
    """Faults waiting for the next requests: "fail twice, then succeed" is two queued faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Fault] = deque()

    def push(self, fault: Fault, count: int = 1) -> None:
        """Queue `fault` for each of the next `count` requests."""
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_QUEUED:
            raise FaultError(f"'count' must be a whole number from 1 to {MAX_QUEUED}, got {count!r}")
        with self._lock:
            if len(self._queue) + count > MAX_QUEUED:
                raise FaultError(f"at most {MAX_QUEUED} faults can wait at once; {len(self._queue)} already do")
            self._queue.extend([fault] * count)

    def pop(self) -> Fault | None:
        """The fault for the request arriving now, if one is queued."""
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def clear(self) -> int:
        """Drop every queued fault; returns how many there were."""
        with self._lock:
            n = len(self._queue)
            self._queue.clear()
            return n

    def pending(self) -> list[dict[str, Any]]:
        """The queued faults, oldest first."""
        with self._lock:
            return [f.to_dict() for f in self._queue]


def parse_fault_request(payload: Any) -> tuple[Fault, int]:
    """The fault and count of a `POST /_sim/faults` body: `{"fault": KIND, "count": N, "after": TOKENS}`."""
    if not isinstance(payload, dict):
        raise FaultError('body must be a JSON object like {"fault": "overloaded", "count": 2}')
    unknown = set(payload) - {"fault", "count", "after", "retry_after", "stall_seconds"}
    if unknown:
        raise FaultError(f"unknown field(s): {', '.join(sorted(unknown))}")
    if "fault" not in payload:
        raise FaultError("fault: Field required")
    fault = Fault(
        payload["fault"],
        after=payload.get("after", DEFAULT_AFTER),
        retry_after=payload.get("retry_after"),
        stall_seconds=payload.get("stall_seconds", DEFAULT_STALL_SECONDS),
    )
    return fault, payload.get("count", 1)
