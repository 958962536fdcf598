"""Faults: every failure the simulator can inject, before and during streams, behind `/api/chat`.

Whatever happens upstream, each client must get a terminal `done` or `error` event, or a documented HTTP error with
a JSON body, and never hang: a watchdog turns a hang into a failure. After each fault the server must still serve.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from course_utils.chat_app import AppServer, ChatSettings, create_app
from course_utils.simulator import FAULTS, Simulator
from course_utils.sse import aparse_sse

from conftest import MODEL, Recorder

WATCHDOG = 10.0  # seconds any one chat may take; the stall below is cut by the app's 0.5 s read timeout
READ_TIMEOUT = 0.5
CONCURRENT_READ_TIMEOUT = 2.0  # still cuts the injected stall, well inside the watchdog
PRE_STREAM = {
    "overloaded": (503, "overloaded_error"),
    "rate_limit": (429, "rate_limit_error"),
    "api_error": (502, "api_error"),
}
UPSTREAM_STATUS = {"overloaded": 529, "rate_limit": 429, "api_error": 500}
MID_STREAM = {
    "error_midstream": "overloaded_error",
    "disconnect_midstream": "api_connection_error",
    "stall_midstream": "timeout_error",
}
CHAT = {"messages": [{"role": "user", "content": "Tell me about rivers"}], "max_tokens": 60}

pytestmark = pytest.mark.timeout(60)


def test_every_fault_kind_is_covered() -> None:
    assert set(PRE_STREAM) | set(MID_STREAM) == set(FAULTS)


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[Simulator, AppServer]]:
    """A simulator of its own, and the app in front of it with a short read timeout so a stall ends quickly."""
    with Simulator(speed=0) as sim:
        settings = ChatSettings(model=MODEL, base_url=sim.base_url, api_key="test-key", read_timeout=READ_TIMEOUT)
        with AppServer(create_app(settings)) as app:
            yield sim, app


@pytest.fixture
def fresh(stack: tuple[Simulator, AppServer], app_log: Recorder) -> Iterator[tuple[Simulator, AppServer]]:
    """The stack, reset; afterwards it must be idle upstream, healthy, and have logged no error."""
    sim, app = stack
    assert sim.wait_idle()
    sim.reset()
    sim.speed = 0
    yield sim, app
    assert sim.wait_idle(timeout=5), sim.stats()
    assert httpx.get(app.url + "healthz", timeout=5).json() == {"ok": True}
    outcome = asyncio.run(chat(app.url, CHAT))
    assert outcome["terminal"] == "done", outcome  # the next chat after the fault is served normally
    assert [r.getMessage() for r in app_log.records if r.levelname in ("ERROR", "CRITICAL")] == []


@pytest.fixture(scope="module")
def reference(stack: tuple[Simulator, AppServer]) -> list[str]:
    """The text deltas of CHAT's reply, straight from the SDK."""
    sim, _ = stack
    client = anthropic.Anthropic(base_url=sim.base_url, api_key="test-key")
    with client.messages.stream(model=MODEL, **CHAT) as stream:
        return list(stream.text_stream)


def documented_statuses(app: AppServer) -> set[int]:
    """The error statuses the app's own OpenAPI document promises for `/api/chat`."""
    responses = httpx.get(app.url + "api/openapi.json", timeout=5).json()["paths"]["/api/chat"]["post"]["responses"]
    return {int(code) for code in responses if code.isdigit() and int(code) >= 400}


async def chat(base_url: str, body: dict[str, Any], http: httpx.AsyncClient | None = None) -> dict[str, Any]:
    """One chat under the watchdog: the HTTP status, the text events, and the one terminal event (or the error)."""
    outcome: dict[str, Any] = {"status": None, "texts": [], "terminal": None, "data": None, "after_terminal": 0}

    async def read(client: httpx.AsyncClient) -> None:
        async with client.stream("POST", base_url + "api/chat", json=body) as response:
            outcome["status"] = response.status_code
            outcome["headers"] = dict(response.headers)
            if response.status_code != 200:
                outcome["body"] = (await response.aread()).decode()
                return
            async for event in aparse_sse(response.aiter_bytes(), strict_eof=True):
                if outcome["terminal"] is not None:
                    outcome["after_terminal"] += 1
                elif event.event == "text":
                    outcome["texts"].append(event.json()["text"])
                else:
                    outcome["terminal"], outcome["data"] = event.event, event.json()

    async def run() -> None:
        if http is not None:
            await read(http)
        else:
            async with httpx.AsyncClient(timeout=30) as client:
                await read(client)

    await asyncio.wait_for(run(), timeout=WATCHDOG)  # raises TimeoutError: the hang the suite exists to catch
    return outcome


@pytest.mark.parametrize("kind", sorted(PRE_STREAM))
def test_pre_stream_fault_absorbed_by_retries_is_invisible(
    fresh: tuple[Simulator, AppServer], reference: list[str], kind: str
) -> None:
    sim, app = fresh
    sim.inject(kind, count=2, retry_after=0.01)  # the SDK retries twice: the third attempt succeeds
    outcome = asyncio.run(chat(app.url, CHAT))
    assert (outcome["status"], outcome["terminal"], outcome["texts"]) == (200, "done", reference)
    assert [r["status"] for r in sim.requests()] == [UPSTREAM_STATUS[kind]] * 2 + [200]


@pytest.mark.parametrize("kind", sorted(PRE_STREAM))
def test_pre_stream_fault_past_retries_is_a_documented_http_error(
    fresh: tuple[Simulator, AppServer], kind: str
) -> None:
    sim, app = fresh
    sim.inject(kind, count=3, retry_after=0.01)
    outcome = asyncio.run(chat(app.url, CHAT))
    status, error_type = PRE_STREAM[kind]
    assert outcome["status"] == status and status in documented_statuses(app)
    assert outcome["headers"]["content-type"] == "application/json"
    body = httpx.Response(status, content=outcome["body"]).json()
    assert body["error"]["type"] == error_type and body["error"]["message"]
    assert "Traceback" not in outcome["body"] and "test-key" not in outcome["body"]
    if kind == "rate_limit":
        assert outcome["headers"]["retry-after"] == "0.01"  # when to come back travels to the browser


@pytest.mark.parametrize("after", [0, 5], ids=["before-first-token", "mid-stream"])
@pytest.mark.parametrize("kind", sorted(MID_STREAM))
def test_mid_stream_fault_ends_in_one_error_event(
    fresh: tuple[Simulator, AppServer], reference: list[str], kind: str, after: int
) -> None:
    sim, app = fresh
    sim.inject(kind, after=after)
    outcome = asyncio.run(chat(app.url, CHAT))
    assert outcome["status"] == 200  # the 200 was sent before the fault: the error must travel in-band
    assert (outcome["terminal"], outcome["data"]["type"]) == ("error", MID_STREAM[kind])
    assert outcome["data"]["message"] and "Traceback" not in outcome["data"]["message"]
    assert outcome["after_terminal"] == 0
    # What arrived before the fault is exactly the start of the real reply.
    assert outcome["texts"] == reference[: len(outcome["texts"])]
    if after == 0:
        assert outcome["texts"] == []
    else:
        assert 0 < len(outcome["texts"]) < len(reference)


def test_faults_of_every_kind_among_concurrent_streams(
    fresh: tuple[Simulator, AppServer], reference: list[str]
) -> None:
    sim, _ = fresh
    sim.speed = 3  # paced, so the streams overlap while the faults strike
    for kind in FAULTS:
        sim.inject(kind, count=3, after=4, retry_after=0.01)
    # No retries here, so that every pre-stream fault reaches a client as an HTTP error among the streams. 40 paced
    # streams, the app and the simulator share one process: under CI load a first event can come later than the
    # 0.5 s used elsewhere, which would become an HTTP error that no fault asked for.
    settings = ChatSettings(
        model=MODEL, base_url=sim.base_url, api_key="test-key", read_timeout=CONCURRENT_READ_TIMEOUT, max_retries=0
    )

    async def everyone(app: AppServer) -> list[dict[str, Any]]:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        async with httpx.AsyncClient(limits=limits, timeout=30) as http:
            return list(await asyncio.gather(*(chat(app.url, CHAT, http) for _ in range(40))))

    with AppServer(create_app(settings)) as app:
        outcomes = asyncio.run(everyone(app))
        documented = documented_statuses(app)
    kinds = {"done": 0, "error": 0, "http": 0}
    for outcome in outcomes:
        if outcome["status"] == 200:
            assert outcome["terminal"] in ("done", "error") and outcome["after_terminal"] == 0, outcome
            assert outcome["texts"] == reference[: len(outcome["texts"])]
            kinds[outcome["terminal"]] += 1
        else:
            assert outcome["status"] in documented, outcome
            kinds["http"] += 1
    assert sim.stats()["faults_injected"] == 3 * len(FAULTS)
    assert kinds == {"done": 40 - 6 * 3, "error": 9, "http": 9}
