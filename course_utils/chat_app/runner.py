"""Serving an app from a background thread, for lessons and tests (`python -m course_utils.chat_app` is the CLI)."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..serving import BackgroundServer, bind_socket, origin, uvicorn_server

# Seconds an open stream may keep the server from exiting on SIGTERM or stop(); then it is cut.
GRACEFUL_SHUTDOWN = 2.0


def page_url(host: str, port: int) -> str:
    """The page's address for a bound host and port."""
    return origin(host, port) + "/"


class AppServer(BackgroundServer):
    """An ASGI app served by uvicorn from a daemon thread, on a free loopback port unless told otherwise."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        super().__init__(
            uvicorn_server(app, graceful=GRACEFUL_SHUTDOWN),
            bind_socket(host, port),
            name="app",
            stop_timeout=GRACEFUL_SHUTDOWN + 5,
        )

    @property
    def socket(self) -> socket.socket:
        """The listening socket: options set on it before `start()` (e.g. SO_SNDBUF) apply to every connection."""
        return self._sock

    @property
    def url(self) -> str:
        """The base URL, ending in `/` (the chat page)."""
        return page_url(self.host, self.port)

    def start(self) -> AppServer:
        """Start serving; returns once the app's lifespan has run and the port accepts connections."""
        super().start()
        return self

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no request is being handled (logging included); True if that happened within `timeout` s."""
        deadline = time.monotonic() + timeout
        while self._server.server_state.tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def __enter__(self) -> AppServer:
        return self.start()

    def __repr__(self) -> str:
        return f"AppServer({self.url!r})"


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


@contextmanager
def server_errors(logger: str = "uvicorn.error") -> Iterator[list[str]]:
    """Collect the errors a server logs (e.g. "Exception in ASGI application") instead of printing tracebacks."""
    log = logging.getLogger(logger)
    errors: list[str] = []
    handler, propagate = _Collect(errors), log.propagate
    log.addHandler(handler)
    log.propagate = False  # uvicorn's own stderr handler sits on the parent logger
    try:
        yield errors
    finally:
        log.removeHandler(handler)
        log.propagate = propagate
