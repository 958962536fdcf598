"""What the simulator has seen, so tests and lessons can prove a stream was closed or a retry happened."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any


class Stats:
    """Thread-safe counters plus a short log of recent requests."""

    COUNTERS = ("requests", "streams_open", "streams_completed", "streams_abandoned", "streams_failed",
                "faults_injected")

    def __init__(self, log_size: int = 200) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self.COUNTERS, 0)
        self._log: deque[dict[str, Any]] = deque(maxlen=log_size)

    def add(self, name: str, n: int = 1) -> None:
        """Add `n` to one counter."""
        with self._lock:
            self._counts[name] += n

    def log(self, entry: dict[str, Any]) -> None:
        """Remember one request's summary (never its credentials)."""
        with self._lock:
            self._log.append(entry)

    def snapshot(self) -> dict[str, int]:
        """The counters now."""
        with self._lock:
            return dict(self._counts)

    def recent(self) -> list[dict[str, Any]]:
        """The logged requests, oldest first."""
        with self._lock:
            return list(self._log)

    def reset(self) -> None:
        """Zero the counters and forget the log (open streams stay counted: they are still open)."""
        with self._lock:
            open_now = self._counts["streams_open"]
            self._counts = dict.fromkeys(self.COUNTERS, 0)
            self._counts["streams_open"] = open_now
            self._log.clear()
