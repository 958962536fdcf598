"""`./course conformance` (tools/conformance.py): the drift check between the real API and the simulator.

Real HTTP throughout: a second simulator stands in for the real API (`--reference-url URL --reference-key dummy`),
plain or behind a small ASGI wrapper that alters its answers on purpose, and the tool, run as the maintainers run
it, must say request by request where the two differ. What the simulator answers to each request does not matter
here (its thinking, tools and caching are still growing): every expectation is derived from the candidate's side of
the tool's own `--json` report.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from course_utils.serving import BackgroundServer, bind_socket, uvicorn_server
from course_utils.simulator import SimulatorApp

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "conformance.py"
FAKE_KEY = "sk-ant-conformance-test-not-a-real-key-7f3a"


def _load_tool() -> Any:
    spec = importlib.util.spec_from_file_location("conformance_tool", TOOL)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


conformance = _load_tool()


# -- a reference that answers differently on purpose ------------------------------------------------------------------


def _sse_events(body: bytes) -> list[bytes]:
    return [chunk + b"\n\n" for chunk in body.split(b"\n\n") if chunk.strip()]


def _sse_data(event: bytes) -> dict[str, Any] | None:
    for line in event.decode().splitlines():
        if line.startswith("data:"):
            return json.loads(line[5:])
    return None


def _zero_usage(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: (_zeroed(v) if k == "usage" else _zero_usage(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_zero_usage(v) for v in obj]
    return obj


def _zeroed(usage: Any) -> Any:
    if isinstance(usage, dict):
        return {k: _zeroed(v) for k, v in usage.items()}
    return 0 if isinstance(usage, int) and not isinstance(usage, bool) else usage


def drop_block_stops(status: int, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
    """Streams lose every `content_block_stop` event."""
    if headers.get("content-type", "").startswith("text/event-stream"):
        body = b"".join(e for e in _sse_events(body) if (_sse_data(e) or {}).get("type") != "content_block_stop")
    return status, headers, body


def errors_to_200(status: int, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
    """Every error answer becomes a plain successful message."""
    if status < 400:
        return status, headers, body
    message = {
        "id": "msg_01Altered",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5-20251001",
        "content": [{"type": "text", "text": "All fine."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 3},
    }
    headers = {k: v for k, v in headers.items() if k != "x-should-retry"}
    return 200, {**headers, "content-type": "application/json"}, json.dumps(message).encode()


def zero_usage(status: int, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
    """Every number in every `usage` object, in JSON answers and in stream events, becomes 0."""
    if headers.get("content-type", "").startswith("text/event-stream"):
        out = []
        for event in _sse_events(body):
            data = _sse_data(event)
            name = event.decode().split("\n", 1)[0]
            out.append(event if data is None else f"{name}\ndata: {json.dumps(_zero_usage(data))}\n\n".encode())
        return status, headers, b"".join(out)
    if headers.get("content-type", "").startswith("application/json"):
        return status, headers, json.dumps(_zero_usage(json.loads(body))).encode()
    return status, headers, body


Alteration = Callable[[int, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]


class AlteredApp:
    """An ASGI wrapper around `SimulatorApp`: buffers each `/v1/messages` answer, alters it, sends it whole.

    It also records the headers of every request it sees, so a test can check what each side was sent.
    """

    def __init__(self, alter: Alteration | None = None) -> None:
        self.app = SimulatorApp(speed=0)
        self.alter = alter
        self.seen: list[dict[str, str]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.seen.append(
            {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]} | {":path": scope["path"]}
        )
        if self.alter is None or not scope["path"].endswith("/v1/messages"):
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start.get("headers", [])}
        status, headers, body = self.alter(start["status"], headers, b"".join(chunks))
        headers["content-length"] = str(len(body))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})


def serve(app: AlteredApp) -> BackgroundServer:
    return BackgroundServer(uvicorn_server(app), bind_socket(), name="altered reference")


@pytest.fixture
def empty_env_file(tmp_path: Path) -> Path:
    path = tmp_path / "empty.env"
    path.write_text("")
    return path


def run_tool(*args: str, env_file: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The tool as `./course conformance` runs it: its own process, its own candidate simulator."""
    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")}
    env["COURSE_SIM_SPEED"] = "0"
    return subprocess.run(
        [sys.executable, str(TOOL), "--env-file", str(env_file), *args],
        cwd=ROOT,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def compare_with(
    app: AlteredApp, tmp_path: Path, env_file: Path, *extra: str
) -> tuple[subprocess.CompletedProcess, dict[str, Any]]:
    report_path = tmp_path / "report.json"
    with serve(app) as reference:
        done = run_tool(
            "--reference-url",
            reference.origin,
            "--reference-key",
            "dummy",
            "--json",
            str(report_path),
            *extra,
            env_file=env_file,
        )
    assert report_path.exists(), done.stdout + done.stderr
    return done, json.loads(report_path.read_text())


def printed_results(stdout: str) -> dict[str, tuple[str, list[str]]]:
    """`label -> (OK|DIFF, [difference lines])` from the tool's printed report."""
    results: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in stdout.splitlines():
        match = re.match(r"^(OK|DIFF)\s+(\S+ \[[^\]]+\])\s", line)
        if match:
            current = match.group(2)
            results[current] = (match.group(1), [])
        elif line.startswith("        ") and current:
            results[current][1].append(line.strip())
    return results


def check_each(
    done: subprocess.CompletedProcess, report: dict[str, Any], expect: Callable[[dict[str, Any]], list[str] | None]
) -> int:
    """For every request: DIFF with lines matching `expect`'s patterns where it returns some, OK where it returns None.

    Returns how many requests were expected to differ (at least one, or the alteration proved nothing).
    """
    printed = printed_results(done.stdout)
    assert len(printed) == len(report["results"]) == len(conformance.plan(conformance.course_models()))
    differing = 0
    for result in report["results"]:
        label = f"{result['name']} [{result['model']}]"
        patterns = expect(result["candidate"]["compared"])
        verdict, lines = printed[label]
        assert lines == result["differences"], label
        if patterns is None:
            assert verdict == "OK" and result["ok"], (label, lines)
            continue
        differing += 1
        assert verdict == "DIFF" and not result["ok"], (label, result["reference"]["compared"])
        for pattern in patterns:
            assert any(re.fullmatch(pattern, line) for line in lines), (label, pattern, lines)
    assert differing >= 1
    assert done.returncode == 1, done.stdout + done.stderr
    total = len(report["results"])
    assert f"summary: {total} requests, {total - differing} OK, {differing} DIFF" in done.stdout
    return differing


# -- the tests --------------------------------------------------------------------------------------------------------


def test_two_simulators_agree_on_every_request(tmp_path: Path, empty_env_file: Path) -> None:
    done, report = compare_with(AlteredApp(), tmp_path, empty_env_file)
    assert done.returncode == 0, done.stdout + done.stderr
    printed = printed_results(done.stdout)
    calls = conformance.plan(conformance.course_models())
    assert list(printed) == [call.label for call in calls]
    assert all(verdict == "OK" for verdict, _ in printed.values()), done.stdout
    total = len(calls)
    assert f"summary: {total} requests, {total} OK, 0 DIFF" in done.stdout
    assert report["summary"] == {"requests": total, "ok": total, "diff": 0}
    # Every request of the set really went out and came back: no transport errors, and both sides saw the wire.
    names = {r["name"] for r in report["results"]}
    assert names == {p.name for p in conformance.PROBES}
    for result in report["results"]:
        for side in ("reference", "candidate"):
            assert isinstance(result[side]["wire"]["status"], int), result
    # The course's models, and each model-specific request on its own model.
    models = {(r["name"], r["model"]) for r in report["results"]}
    for model in ("claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-6"):
        assert ("plain-stream", model) in models
    assert ("thinking-enabled", "claude-haiku-4-5") in models and ("prefill-rejected", "claude-sonnet-4-6") in models
    assert ("temperature-rejected", "claude-opus-4-7") in models
    assert ("thinking-by-default", "claude-sonnet-5") in models


def test_dropped_content_block_stops_are_reported_on_every_stream(tmp_path: Path, empty_env_file: Path) -> None:
    done, report = compare_with(AlteredApp(drop_block_stops), tmp_path, empty_env_file)

    def expect(candidate: dict[str, Any]) -> list[str] | None:
        if not any(e.startswith("content_block_stop") for e in candidate.get("event sequence", [])):
            return None  # errors, JSON answers, streams without blocks: nothing was dropped
        return [
            r"event sequence: reference \[.*\] vs candidate \[.*content_block_stop\(0\).*\]",
            r"stream structure: .*never stopped.* vs ok",
        ]

    check_each(done, report, expect)


def test_an_error_turned_into_a_200_is_reported(tmp_path: Path, empty_env_file: Path) -> None:
    done, report = compare_with(AlteredApp(errors_to_200), tmp_path, empty_env_file)

    def expect(candidate: dict[str, Any]) -> list[str] | None:
        status = candidate["status"]
        if not isinstance(status, int) or status < 400:
            return None
        return [
            rf"status: 200 vs {status}",
            r"reference: blocks \[text\], stop_reason end_turn",
            rf"candidate: {re.escape(candidate['error.type'])}: .*",
        ]

    # Requests the path check leaves alone (GET /v1/models/...) are not altered, and agree.
    check_each(done, report, expect)


def test_zeroed_usage_is_reported_field_by_field(tmp_path: Path, empty_env_file: Path) -> None:
    done, report = compare_with(AlteredApp(zero_usage), tmp_path, empty_env_file)

    def expect(candidate: dict[str, Any]) -> list[str] | None:
        nonzero = [k for k, v in candidate.items() if ".usage." in f".{k}" and v == ">0"]
        return [rf"{re.escape(k)}: 0 vs >0" for k in nonzero] or None

    check_each(done, report, expect)


def test_the_real_key_goes_to_the_reference_only_and_is_never_printed(tmp_path: Path, empty_env_file: Path) -> None:
    reference_app, candidate_app = AlteredApp(), AlteredApp()
    report_path = tmp_path / "report.json"
    with serve(reference_app) as reference, serve(candidate_app) as candidate:
        done = run_tool(
            "--reference-url",
            reference.origin,
            "--reference-key",
            FAKE_KEY,
            "--candidate-url",
            candidate.origin,
            "--models",
            "claude-haiku-4-5",
            "--only",
            "plain-stream,no-version-header,models-retrieve",
            "--json",
            str(report_path),
            env_file=empty_env_file,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(reference_app.seen) == len(candidate_app.seen) == 3
    assert {h.get("x-api-key") for h in reference_app.seen} == {FAKE_KEY}
    assert {h.get("x-api-key") for h in candidate_app.seen} == {conformance.DUMMY_KEY}
    for seen in (reference_app.seen, candidate_app.seen):
        versions = [h.get("anthropic-version") for h in seen]
        assert versions == [conformance.API_VERSION, None, conformance.API_VERSION]  # the 2nd omits it on purpose
    for text in (done.stdout, done.stderr, report_path.read_text()):
        assert FAKE_KEY not in text and FAKE_KEY[7:20] not in text


def test_without_a_key_it_prints_the_plan_and_sends_nothing(empty_env_file: Path) -> None:
    # Two listening sockets stand for both sides: neither may see a connection.
    listeners = [bind_socket(), bind_socket()]
    try:
        urls = [f"http://127.0.0.1:{s.getsockname()[1]}" for s in listeners]
        done = run_tool("--reference-url", urls[0], "--candidate-url", urls[1], env_file=empty_env_file)
        for listener in listeners:
            with pytest.raises(BlockingIOError):
                listener.accept()
    finally:
        for listener in listeners:
            listener.close()
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "No API key" in out and "nothing is sent" in out
    assert f"reference: {urls[0]}" in out and f"candidate: {urls[1]}" in out
    assert "models: claude-haiku-4-5, claude-sonnet-4-6, claude-opus-4-6" in out
    for call in conformance.plan(conformance.course_models()):
        assert re.search(
            rf"\d+\. {re.escape(call.label)}\s+{call.probe.method} {re.escape(call.path)}: "
            rf"{re.escape(call.probe.purpose)}$",
            out,
            re.MULTILINE,
        ), call.label


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any socket connection or bind in this process fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network used: {args[1:] or kwargs}")

    for name in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield


def test_without_a_key_no_simulator_is_started_and_no_connection_made(
    no_network: None, empty_env_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert conformance.main(["--env-file", str(empty_env_file), "--models", "claude-haiku-4-5,claude-sonnet-5"]) == 0
    out = capsys.readouterr().out
    assert "reference: https://api.anthropic.com" in out
    assert "candidate: a simulator it starts on a free loopback port" in out
    assert "models: claude-haiku-4-5, claude-sonnet-5" in out
    assert "plain-stream [claude-sonnet-5]" in out and "prefill-rejected [claude-sonnet-4-6]" in out


def test_the_course_command_runs_it(empty_env_file: Path) -> None:
    # ./course hands every command to the cross-platform console (course_utils.console, through course_instructors in
    # a checkout), which runs the tool.
    script = (ROOT / "course").read_text()
    assert 'exec "$PY" -m "$CONSOLE" "$@"' in script and "CONSOLE=course_utils.console" in script
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "course_utils.console",
            "conformance",
            "--env-file",
            str(empty_env_file),
            "--only",
            "plain-stream",
        ],
        cwd=ROOT,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "No API key" in done.stdout and "plain-stream [claude-haiku-4-5]" in done.stdout


def _stream_outcome(
    texts: list[str], pings: int, input_tokens: int, msg_id: str, leading_text: bool = False
) -> dict[str, Any]:
    """A recorded stream as the tool keeps it: (event, data) pairs after a 200."""

    def ev(data: dict[str, Any]) -> dict[str, Any]:
        return {"event": data["type"], "data": data}

    usage = {"input_tokens": input_tokens, "cache_read_input_tokens": 0, "output_tokens": 1}
    events = [
        ev(
            {
                "type": "message_start",
                "message": {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": "m",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": usage,
                },
            }
        )
    ]
    events += [ev({"type": "ping"})] * pings
    index = 0
    if leading_text:
        events += [
            ev({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ev({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Sure."}}),
            ev({"type": "content_block_stop", "index": 0}),
        ]
        index = 1
    events.append(
        ev(
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "tool_use", "id": msg_id, "name": "t", "input": {}},
            }
        )
    )
    events += [
        ev({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": t}})
        for t in texts
    ]
    events += [
        ev({"type": "content_block_stop", "index": index}),
        ev(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 7 * len(texts)},
            }
        ),
        ev({"type": "message_stop"}),
    ]
    return {"status": 200, "headers": {"content-type": "text/event-stream; charset=utf-8"}, "events": events}


def test_volatile_things_are_ignored_and_real_differences_are_not() -> None:
    probe = next(p for p in conformance.PROBES if p.name == "tool-choice-any")
    auto = next(p for p in conformance.PROBES if p.name == "tool-choice-auto")
    one = _stream_outcome(['{"city": "Paris"}'], pings=0, input_tokens=10, msg_id="a")
    other = _stream_outcome(['{"ci', 'ty": ', '"Rome"}'], pings=3, input_tokens=999, msg_id="b")
    assert conformance.compare(one, other, probe)[0] == []  # ids, text, token counts, pings, delta splitting
    explained = _stream_outcome(["{}"], pings=1, input_tokens=5, msg_id="c", leading_text=True)
    assert conformance.compare(one, explained, auto)[0] == []  # auto may explain first
    lines = conformance.compare(one, explained, probe)[0]  # forced tool use may not
    assert "block types: reference [tool_use] vs candidate [text, tool_use]" in lines
    cached = _stream_outcome(["{}"], pings=0, input_tokens=10, msg_id="d")
    cached["events"][0]["data"]["message"]["usage"]["cache_read_input_tokens"] = 4096
    assert conformance.compare(cached, one, probe)[0] == ["message_start.usage.cache_read_input_tokens: >0 vs 0"]
