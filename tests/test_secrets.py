"""Secrets: no API key in any tracked file or notebook output, `.env` ignored by git, and the app never echoes its key.

The scanner is tested on a planted key first, so a scan that finds nothing is evidence, not an accident.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from course_utils.chat_app import AppServer, ChatSettings, create_app
from course_utils.simulator import FAULTS, Simulator

from conftest import MODEL

ROOT = Path(__file__).resolve().parents[1]
# Shapes of real credentials. Anthropic keys: sk-ant-api03-..., sk-ant-admin01-..., sk-ant-oat01-... (OAuth).
KEY_PATTERNS = {
    "anthropic": re.compile(rb"sk-ant-[a-z]{2,6}\d{2}-[A-Za-z0-9_\-]{20,}"),
    "openai-style": re.compile(rb"\bsk-(?:proj-)?[A-Za-z0-9]{32,}"),
    "aws access key": re.compile(rb"\bAKIA[0-9A-Z]{16}\b"),
    "github token": re.compile(rb"\bgh[pousr]_[A-Za-z0-9]{36,}"),
    "private key": re.compile(rb"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----"),
    # A key assigned in an env file or a shell line; the course's placeholders are short words, not keys.
    "assigned key": re.compile(rb"ANTHROPIC_API_KEY\s*[=:]\s*[\"']?[A-Za-z0-9_\-]{24,}"),
}
NOTEBOOK_DIRS = ("notebooks", "solutions", "exercises")


def fake_key() -> str:
    """A key with the real shape, fresh for each run, that no server anywhere accepts."""
    return "sk-ant-api03-" + secrets.token_urlsafe(70)[:93] + "AA"


def find_keys(data: bytes) -> list[str]:
    """The kinds of credential found in `data` (never the credential itself: the report must not leak it)."""
    return [kind for kind, pattern in KEY_PATTERNS.items() if pattern.search(data)]


def tracked_files() -> list[Path]:
    """Every file git tracks in this checkout (a clean clone's view of the repository)."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in out.decode().split("\0") if name]


def notebook_outputs(path: Path) -> Iterator[tuple[str, bytes]]:
    """Each code cell's outputs (text, data, tracebacks) as bytes, labelled `cell N`."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for n, cell in enumerate(notebook.get("cells", []), 1):
        for output in cell.get("outputs", []):
            yield f"cell {n}", json.dumps(output, ensure_ascii=False).encode()


def test_the_scanner_finds_a_planted_key(tmp_path: Path) -> None:
    key = fake_key()
    assert find_keys(f"client = Anthropic(api_key='{key}')".encode()) == ["anthropic"]
    assert find_keys(f"ANTHROPIC_API_KEY={key}\n".encode()) == ["anthropic", "assigned key"]
    planted = tmp_path / "leak.ipynb"
    planted.write_text(
        json.dumps(
            {
                "cells": [
                    {"cell_type": "code", "source": "print(key)", "outputs": [{"output_type": "stream", "text": key}]}
                ]
            }
        )
    )
    assert [where for where, data in notebook_outputs(planted) if find_keys(data)] == ["cell 1"]
    # The course's own placeholders are not keys.
    assert find_keys(b"ANTHROPIC_API_KEY=\nANTHROPIC_API_KEY=sk-ant-...\napi_key='offline'") == []


def test_no_tracked_file_holds_a_key() -> None:
    files = tracked_files()
    assert len(files) > 20 and ROOT / "README.md" in files
    leaks = {str(f.relative_to(ROOT)): kinds for f in files if f.is_file() and (kinds := find_keys(f.read_bytes()))}
    assert leaks == {}


def test_no_notebook_output_holds_a_key_or_an_auth_header() -> None:
    notebooks = [f for f in tracked_files() if f.suffix == ".ipynb" and f.relative_to(ROOT).parts[0] in NOTEBOOK_DIRS]
    assert notebooks, "no committed notebooks found"
    leaks = []
    for notebook in notebooks:
        for where, data in notebook_outputs(notebook):
            kinds = find_keys(data)
            # A placeholder such as `Bearer <token>` (the app's own 401 message) names no credential.
            if re.search(rb"(?i)(authorization: bearer|x-api-key:)\s*(?!<)\S{8,}", data):
                kinds.append("auth header")
            if kinds:
                leaks.append(f"{notebook.relative_to(ROOT)} {where}: {', '.join(kinds)}")
    assert leaks == []


def test_env_file_is_ignored_by_git() -> None:
    for name in (".env", "notebooks/.env"):
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", name], cwd=ROOT).returncode
        assert ignored == 0, f"{name} is not ignored by git"
    assert ".env" not in {f.name for f in tracked_files()}
    assert subprocess.run(["git", "check-ignore", "-q", "--no-index", ".env.example"], cwd=ROOT).returncode == 1


# -- the app never echoes its key -------------------------------------------------------------------------------------


class Everything(logging.Handler):
    """Every log record, at every level, rendered as the server's log would show it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(logging.Formatter("%(name)s %(message)s").format(record))


@pytest.fixture
def keyed_app() -> Iterator[tuple[str, Simulator, AppServer, Everything]]:
    """The app holding a realistic (fake) key, with every server-side log record captured, debug ones included."""
    key = fake_key()
    log = Everything()
    # Debug logging on, as someone chasing a problem in production would turn it on (ANTHROPIC_LOG=debug).
    names = ("", "uvicorn", "uvicorn.error", "course_utils", "anthropic", "httpx2", "httpcore2")
    loggers = [(logging.getLogger(name), logging.getLogger(name).level) for name in names]
    for logger, _ in loggers:
        logger.addHandler(log)
        if logger.name != "root":
            logger.setLevel(logging.DEBUG)
    try:
        with Simulator(speed=0) as sim:
            settings = ChatSettings(model=MODEL, base_url=sim.base_url, api_key=key, read_timeout=0.5)
            with AppServer(create_app(settings)) as app:
                yield key, sim, app, log
    finally:
        for logger, level in loggers:
            logger.removeHandler(log)
            logger.setLevel(level)


async def every_answer(sim: Simulator, app: AppServer) -> list[tuple[str, httpx.Response, bytes]]:
    """The app's answers to every kind of request: normal, each upstream fault, invalid, unknown, its documents."""
    chat = {"messages": [{"role": "user", "content": "Hello there"}], "max_tokens": 20}
    answers = []
    async with httpx.AsyncClient(base_url=app.url, timeout=10) as http:

        async def call(label: str, method: str, path: str, **kwargs: Any) -> None:
            async with http.stream(method, path, **kwargs) as response:
                answers.append((label, response, b"".join([chunk async for chunk in response.aiter_raw()])))

        await call("chat", "POST", "api/chat", json=chat)
        for kind in FAULTS:
            sim.inject(kind, count=3, after=2, retry_after=0.01)
            await call(kind, "POST", "api/chat", json=chat)
            sim.clear_faults()
        await call("invalid", "POST", "api/chat", json={"messages": []})
        await call("bad model", "POST", "api/chat", json={**chat, "model": "nope"})
        await call("not json", "POST", "api/chat", content=b"{", headers={"content-type": "application/json"})
        for path in ("", "api/config", "api/openapi.json", "api/docs", "healthz", "nope", "static/nope.js"):
            await call(f"GET /{path}", "GET", path)
    return answers


def test_the_app_never_echoes_its_key(keyed_app: tuple[str, Simulator, AppServer, Everything]) -> None:
    key, sim, app, log = keyed_app
    answers = asyncio.run(every_answer(sim, app))
    assert len(answers) == 1 + len(FAULTS) + 3 + 7
    assert {label: r.status_code for label, r, _ in answers}["chat"] == 200
    assert any(r.status_code >= 500 for _, r, _ in answers)  # the upstream errors did happen
    # The key did reach the upstream (so it was really in use)...
    assert all(entry["status"] is not None for entry in sim.requests())
    # ...and never came back: not in a body, a header, or a line of the server's log.
    fragments = [key, key[len("sk-ant-api03-") :][:24]]  # the whole key, or a telling piece of it
    for label, response, body in answers:
        seen = body + repr(response.headers.multi_items()).encode()
        assert not any(f.encode() in seen for f in fragments), f"the key is in the answer to {label}"
        assert find_keys(seen) == [], label
    assert log.lines, "no log records captured: the check below would prove nothing"
    assert not [line for line in log.lines if any(f in line for f in fragments)]


def test_a_key_sent_by_the_browser_is_not_reflected(keyed_app: tuple[str, Simulator, AppServer, Everything]) -> None:
    _, _, app, log = keyed_app
    browser_key = fake_key()
    headers = {"authorization": f"Bearer {browser_key}", "x-api-key": browser_key}
    chat = {"messages": [{"role": "user", "content": "Hello there"}], "max_tokens": 10}

    async def send() -> list[bytes]:
        bodies = []
        async with httpx.AsyncClient(base_url=app.url, timeout=10, headers=headers) as http:
            for body in (chat, {"messages": []}, {**chat, "extra": 1}):
                async with http.stream("POST", "api/chat", json=body) as response:
                    bodies.append(
                        b"".join([c async for c in response.aiter_raw()])
                        + repr(response.headers.multi_items()).encode()
                    )
        return bodies

    for body in asyncio.run(send()):
        assert browser_key.encode() not in body
    assert not [line for line in log.lines if browser_key in line]
