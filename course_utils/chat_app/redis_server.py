"""A throwaway `redis-server` on a free loopback port, for lesson 08 and the tests: no disk, stopped with the process.

server = RedisServer.start()     # None when redis-server (or the redis package) is not installed
server.url                       # redis://127.0.0.1:<port>/0
"""

from __future__ import annotations

import atexit
import importlib.util
import shutil
import socket
import subprocess
import threading


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A running redis-server of our own; `stop()` ends it (at exit at the latest)."""

    def __init__(self, proc: subprocess.Popen[str], port: int) -> None:
        self.proc, self.port = proc, port
        self.url = f"redis://127.0.0.1:{port}/0"
        atexit.register(self.stop)

    @classmethod
    def available(cls) -> bool:
        """True when both the server (Debian's redis-server) and the Python client (the [deploy] extra) are here."""
        return shutil.which("redis-server") is not None and importlib.util.find_spec("redis") is not None

    @classmethod
    def start(cls) -> RedisServer | None:
        """Start one and return once it accepts connections (its own 'Ready' line); None if unavailable."""
        path = shutil.which("redis-server")
        if path is None or not cls.available():
            return None
        port = _free_port()
        # No snapshot, no append-only file: state lives as long as this server, as a lesson's should.
        proc = subprocess.Popen(
            [path, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for line in proc.stdout:  # type: ignore[union-attr]
            if "Ready to accept connections" in line:
                # Keep reading its log, or a full pipe would one day block the server.
                threading.Thread(target=proc.stdout.read, daemon=True).start()  # type: ignore[union-attr]
                return cls(proc, port)
        proc.wait()
        return None

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def __repr__(self) -> str:
        return f"RedisServer('redis://127.0.0.1:{self.port}/0')"
