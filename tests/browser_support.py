"""Driving Debian's Chromium with Playwright (launch it, or fail under CI / skip elsewhere when it is missing), and a
real Jupyter server with jupyter-server-proxy to open pages through, as on a JupyterHub."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"  # gitignored; CI uploads it
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """The browser to drive: $CHROMIUM_PATH or Debian's /usr/bin/chromium; missing fails under CI, else skips."""
    path = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not os.access(path, os.X_OK):
        message = f"Chromium not found at {path}: `./course test` installs it (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def screenshot(page: Page, name: str) -> Path:
    """Save a PNG of the page under test-artifacts/ and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), animations="disabled")
    return path


@dataclass(frozen=True)
class JupyterServer:
    """A running Jupyter server: where it listens, under which base URL, and its token."""

    origin: str
    base_url: str
    token: str


def _only_the_proxy() -> dict[str, bool]:
    """Server extensions to load: jupyter-server-proxy, and none of the others this environment enables (JupyterLab,
    nbgrader...), which only slow the start and log complaints about a course directory."""
    enabled: dict[str, bool] = {}
    for path in Path(sys.prefix, "etc", "jupyter", "jupyter_server_config.d").glob("*.json"):
        enabled.update(json.loads(path.read_text()).get("ServerApp", {}).get("jpserver_extensions", {}))
    return {**{name: False for name in enabled}, "jupyter_server_proxy": True}


@contextlib.contextmanager
def jupyter_server(base_url: str = "/") -> Iterator[JupyterServer]:
    """A Jupyter server with jupyter-server-proxy at `base_url` (starting and ending in "/") on a free loopback port,
    token auth, its own config and runtime directories (nothing of the user's is read or written)."""
    try:
        import jupyter_server_proxy  # noqa: F401
    except ImportError:
        message = "jupyter-server-proxy is not installed: `./course test` installs requirements-dev.txt"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp, "config")
        config.mkdir()
        settings = {"ServerApp": {"jpserver_extensions": _only_the_proxy()}}
        (config / "jupyter_server_config.json").write_text(json.dumps(settings))
        env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(config),
            "JUPYTER_RUNTIME_DIR": str(Path(tmp, "runtime")),
            "JUPYTER_DATA_DIR": str(Path(tmp, "data")),
        }
        command = [
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.base_url={base_url}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={tmp}",
        ]
        proc = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        log: list[str] = []
        drain: threading.Thread | None = None
        try:
            for line in proc.stderr:  # type: ignore[union-attr]  # wait for the signal, not a sleep
                log.append(line)
                if "is running at" in line:
                    break
            else:
                pytest.fail("the Jupyter server exited before it was ready:\n" + "".join(log[-30:]))
            # Keep reading its log, so that a full pipe never blocks the server.
            drain = threading.Thread(target=lambda: log.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
            drain.start()
            yield JupyterServer(f"http://127.0.0.1:{port}", base_url, token)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if drain is not None:
                drain.join(timeout=5)  # the pipe's end has come: the reader stops
            proc.stderr.close()  # type: ignore[union-attr]
