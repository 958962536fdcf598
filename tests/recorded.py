"""The SDK's own recorded streams (shared/fixtures/anthropic-sdk-python), located once for every test module.

Missing fixtures fail under CI=true and skip elsewhere, so a broken checkout can never pass silently.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NoReturn

import pytest


def _locate() -> Path:
    env = os.environ.get("COURSE_FIXTURES_DIR")
    if env:
        # Accept either the folder that holds anthropic-sdk-python/ or that folder itself.
        root = Path(env)
        return root / "anthropic-sdk-python" if (root / "anthropic-sdk-python").is_dir() else root
    return Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "anthropic-sdk-python"


FIXTURES = _locate()


def missing() -> NoReturn:
    """Fail on CI, skip elsewhere: the recorded fixtures are not there."""
    reason = f"SDK fixtures not found in {FIXTURES} (set COURSE_FIXTURES_DIR)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def fixtures_dir() -> Path:
    """The fixtures folder, or a fail/skip if it is missing."""
    if not FIXTURES.is_dir():
        missing()
    return FIXTURES


def sse_bodies() -> list[Any]:
    """One pytest param per SSE body: streaming/*.txt|*.sse and every 200 SSE reply in recorded/*.json."""
    params = [
        pytest.param(path.read_bytes(), id=path.name)
        for path in sorted((FIXTURES / "streaming").glob("*"))
        if path.suffix in {".txt", ".sse"}
    ]
    # recorded/*.json is a list of {"request": {...}, "response": {"status_code", "headers", "body"}};
    # an SSE reply keeps its body as one string, a JSON reply as a parsed object.
    for path in sorted((FIXTURES / "recorded").glob("*.json")):
        for i, exchange in enumerate(json.loads(path.read_text())):
            response = exchange["response"]
            if response["status_code"] == 200 and response["headers"].get("content-type", "").startswith(
                "text/event-stream"
            ):
                params.append(pytest.param(response["body"].encode(), id=f"{path.name}#{i}"))
    # A missing or empty fixture folder becomes one test that fails on CI and skips elsewhere.
    return params or [pytest.param(None, id="fixtures-missing")]


def require(body: bytes | None) -> bytes:
    """The body of a `sse_bodies()` param, or a fail/skip if the fixtures are missing."""
    if body is None:
        missing()
    return body
