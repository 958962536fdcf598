"""Serving an ASGI app with uvicorn on a bound socket: in the foreground, or from a background thread.

The simulator, the chat app and the grader's checks all serve this way, on a free loopback port by default.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import uvicorn


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket; port 0 picks a free one, so parallel runs never collide."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin(host: str, port: int) -> str:
    """`http://host:port`, with brackets around an IPv6 host."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def page_address(port: int, host: str = "127.0.0.1", environ: Mapping[str, str] | None = None) -> str:
    """Where a browser opens a page served on `port`: through jupyter-server-proxy on a JupyterHub, else directly.

    A JupyterHub (Binder too) sets `JUPYTERHUB_SERVICE_PREFIX`, e.g. `/user/ada/`, for the single-user server; a
    browser cannot reach that machine's loopback, but jupyter-server-proxy relays `<prefix>proxy/<port>/` to it. The
    result is then a path on the hub's own address, the one the notebook was opened from.
    """
    prefix = (os.environ if environ is None else environ).get("JUPYTERHUB_SERVICE_PREFIX", "")
    if not prefix:
        return origin(host, port) + "/"
    path = prefix.strip("/")  # the hub's value ends in "/"; accept one without, too
    return f"/{path}/proxy/{port}/" if path else f"/proxy/{port}/"


def uvicorn_config(app: Any, *, log_level: str = "warning", graceful: float = 1.0, **options: Any) -> uvicorn.Config:
    """uvicorn's settings for the course's servers: quiet, and quick to stop even with streams open."""
    # uvicorn annotates the shutdown timeout as int, but hands it to asyncio.wait_for: a fraction of a second works.
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        backlog=2048,
        timeout_graceful_shutdown=graceful,  # type: ignore[arg-type]
        timeout_keep_alive=30,
        **options,
    )


def uvicorn_server(app: Any, *, log_level: str = "warning", graceful: float = 1.0) -> uvicorn.Server:
    """A uvicorn server for an ASGI app with `uvicorn_config`'s settings."""
    return uvicorn.Server(uvicorn_config(app, log_level=log_level, graceful=graceful))


class BackgroundServer:
    """A uvicorn server run from a daemon thread on its own socket; `start()` returns once it accepts connections."""

    def __init__(
        self,
        server: uvicorn.Server,
        sock: socket.socket,
        *,
        name: str = "server",
        stop_timeout: float = 5.0,
        on_thread_start: Callable[[], None] | None = None,
    ) -> None:
        self._server, self._sock, self._name = server, sock, name
        self.host, self.port = sock.getsockname()[:2]
        self._stop_timeout = stop_timeout
        self._on_thread_start = on_thread_start
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def origin(self) -> str:
        """`http://host:port` of the server."""
        return origin(self.host, self.port)

    @property
    def running(self) -> bool:
        """True between `start()` and `stop()`."""
        return self._thread is not None

    def _run(self) -> None:
        if self._on_thread_start is not None:
            self._on_thread_start()
        self._server.run(sockets=[self._sock])

    def start(self) -> BackgroundServer:
        """Start serving in a daemon thread; returns once the server accepts connections."""
        if self._thread is not None:
            return self
        if self._stopped:
            raise RuntimeError(f"a stopped {type(self).__name__} cannot be restarted; create a new one")
        self._thread = threading.Thread(target=self._run, name=f"{self._name}:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {self._name} did not start on {self.origin}")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; a loop that will not stop in time is forced to."""
        if self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=self._stop_timeout)
        if self._thread.is_alive():  # only if the loop itself is blocked; do not wait for anything
            self._server.force_exit = True
            self._thread.join(timeout=5)
        self._thread = None
        self._stopped = True
        self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
