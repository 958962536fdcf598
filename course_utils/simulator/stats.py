"""What the simulator has seen, so tests and lessons can prove a stream was closed or a retry happened."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any


class Stats:
    """Thread-safe counters plus a short log of recent requests (the server's thread writes, any thread reads)."""

    COUNTERS = (
        "requests",
        "streams_open",
        "streams_completed",
        "streams_abandoned",
        "streams_failed",
        "faults_injected",
    )
    OUTCOMES = ("completed", "abandoned", "failed")

    def __init__(self, log_size: int = 200) -> None:
        self._lock = threading.Condition()  # a condition, so that waiting for idle wakes on a stream's end
        self._counts = dict.fromkeys(self.COUNTERS, 0)
        self._log: deque[dict[str, Any]] = deque(maxlen=log_size)
        self._started = time.monotonic()

    def add(self, name: str, n: int = 1) -> None:
        """Add `n` to one counter."""
        with self._lock:
            self._counts[name] += n

    def end_stream(self, outcome: str) -> None:
        """Move one stream from open to `completed`, `abandoned` or `failed`, in one step.

        One step, so that a reader who sees `streams_open == 0` also sees where the stream went.
        """
        if outcome not in self.OUTCOMES:
            raise ValueError(f"unknown stream outcome {outcome!r}")
        with self._lock:
            self._counts["streams_open"] -= 1
            self._counts[f"streams_{outcome}"] += 1
            self._lock.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Block until no stream is open; True if that happened within `timeout` seconds."""
        with self._lock:
            return self._lock.wait_for(lambda: self._counts["streams_open"] <= 0, timeout)

    def log(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Count a `/v1/messages` request and remember its summary (never its credentials); returns the entry."""
        with self._lock:
            self._counts["requests"] += 1
            entry = {**entry, "time": round(time.monotonic() - self._started, 4)}
            self._log.append(entry)
            return entry

    def update(self, entry: dict[str, Any], **fields: Any) -> None:
        """Record more about a logged request (its status, its fault) as the simulator learns it."""
        with self._lock:
            entry.update(fields)

    def snapshot(self) -> dict[str, int]:
        """The counters now."""
        with self._lock:
            return dict(self._counts)

    def recent(self) -> list[dict[str, Any]]:
        """Copies of the logged requests, oldest first; `time` is seconds since the simulator started."""
        with self._lock:
            return [dict(entry) for entry in self._log]

    def reset(self) -> None:
        """Zero the counters and forget the log (open streams stay counted: they are still open)."""
        with self._lock:
            open_now = self._counts["streams_open"]
            self._counts = dict.fromkeys(self.COUNTERS, 0)
            self._counts["streams_open"] = open_now
            self._log.clear()
