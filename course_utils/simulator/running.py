"""Running the simulator: in a background thread of this process, or in the foreground from the command line."""

from __future__ import annotations

import atexit
import json
import os
import socket
import threading
from typing import Any

import uvicorn

from ..serving import BackgroundServer, bind_socket, origin, uvicorn_config
from .app import SimulatorApp
from .faults import DEFAULT_AFTER, DEFAULT_STALL_SECONDS, Fault
from .models import known_models
from .plan import check_speed

SPEED_ENV = "COURSE_SIM_SPEED"


def speed_from_env(default: float = 1.0) -> float:
    """The pacing from `COURSE_SIM_SPEED` (1 real-time, 2 twice as fast, 0 no delay)."""
    raw = os.environ.get(SPEED_ENV, "").strip()
    if not raw:
        return default
    try:
        return check_speed(float(raw), SPEED_ENV)
    except ValueError:
        raise ValueError(f"{SPEED_ENV} must be a number >= 0 (1 real-time, 0 no delay), got {raw!r}") from None


class SimulatorServer(uvicorn.Server):
    """uvicorn, quiet, that cuts the simulator's requests in flight before shutting down.

    A stalled stream would otherwise hold the graceful shutdown until its timeout, then end in a logged
    cancellation traceback; cut first, every connection closes at once, as when a real server goes down.
    """

    def __init__(self, app: SimulatorApp, *, log_level: str = "warning", graceful: float = 1.0) -> None:
        # proxy_headers off: nothing sits in front of the simulator, and it saves a middleware on every request.
        super().__init__(uvicorn_config(app, log_level=log_level, graceful=graceful, proxy_headers=False))
        self.simulator_app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Cut open requests, then shut down as uvicorn does."""
        self.simulator_app.close()
        await super().shutdown(sockets)


class Simulator(BackgroundServer):
    """A Messages API simulator on a free loopback port, served from a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, speed: float | None = None) -> None:
        self.app = SimulatorApp(speed=speed_from_env() if speed is None else check_speed(speed))
        super().__init__(SimulatorServer(self.app), bind_socket(host, port), name="simulator")

    @property
    def base_url(self) -> str:
        """What to give the SDK as `base_url` (or `ANTHROPIC_BASE_URL`)."""
        return self.origin

    @property
    def speed(self) -> float:
        """Pacing: 1 real-time, 2 twice as fast, 0 no delay. Settable while running."""
        return self.app.speed

    @speed.setter
    def speed(self, value: float) -> None:
        self.app.speed = check_speed(value)

    def start(self) -> Simulator:
        """Start serving in a daemon thread; returns once the server accepts connections."""
        super().start()
        return self

    def stop(self) -> None:
        """Stop serving; requests still in flight (a stalled stream too) are cut, as when a real server goes down."""
        super().stop()

    def __enter__(self) -> Simulator:
        return self.start()

    def inject(
        self,
        fault: str,
        count: int = 1,
        after: int = DEFAULT_AFTER,
        retry_after: float | None = None,
        stall_seconds: float = DEFAULT_STALL_SECONDS,
    ) -> None:
        """Make the next `count` requests fail with `fault` (one of `course_utils.simulator.FAULTS`)."""
        self.app.faults.push(Fault(fault, after=after, retry_after=retry_after, stall_seconds=stall_seconds), count)

    def clear_faults(self) -> int:
        """Forget queued faults; returns how many were dropped."""
        return self.app.faults.clear()

    def replay(self, sse_body: bytes) -> None:
        """Serve these exact SSE bytes as the next `/v1/messages` response (recorded streams, fidelity tests)."""
        self.app.replays.append(bytes(sse_body))

    def stats(self) -> dict[str, Any]:
        """Counters: `requests`, `streams_open`, `streams_completed`, `streams_abandoned`, `streams_failed`..."""
        return self.app.snapshot()

    def requests(self) -> list[dict[str, Any]]:
        """Recent `/v1/messages` requests, oldest first: request_id, model, stream, fault, status, retry_count, time."""
        return self.app.stats.recent()

    def reset(self) -> None:
        """Zero the counters, forget the request log, drop queued faults and replays."""
        self.app.reset()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no stream is open; True if that happened within `timeout` seconds."""
        return self.app.stats.wait_idle(timeout)

    def __repr__(self) -> str:
        return f"Simulator({self.base_url!r}, speed={self.speed:g})"


_shared: Simulator | None = None
_shared_lock = threading.Lock()


def shared_simulator(speed: float | None = None) -> Simulator:
    """The one simulator this process shares (started on first use), as `setup()` uses it."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Simulator(speed=speed).start()
            # Stopping before the interpreter tears down avoids a server thread dying mid-finalisation.
            atexit.register(_shared.stop)
        elif speed is not None:
            _shared.speed = speed
        return _shared


def shared_base_url() -> str | None:
    """The shared simulator's base URL, or None if it was never started."""
    return _shared.base_url if _shared is not None else None


def serve_forever(host: str, port: int, speed: float) -> None:
    """Serve in the foreground, printing the base URL first, until interrupted."""
    app = SimulatorApp(speed=speed)
    sock = bind_socket(host, port)
    known_models()  # load the SDK's model list now, so that the first request is as quick as the rest
    base_url = origin(*sock.getsockname()[:2])
    print(base_url, flush=True)
    print(json.dumps({"speed": speed, "stats": f"{base_url}/_sim/stats"}), flush=True)
    SimulatorServer(app).run(sockets=[sock])
