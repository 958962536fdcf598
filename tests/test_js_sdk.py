"""The official JavaScript SDK against the simulator over real HTTP: text, raw events, tools, thinking, errors.

Each test runs one script from tests/js/ under Node (`node tests/js/<script>.mjs`, with SIM_BASE_URL set to the
simulator) and asserts here on the one line of JSON it prints. The SDK is `@anthropic-ai/sdk` at the exact version
pinned in tests/js/package-lock.json; `./course test` installs it with `npm ci --prefix tests/js`. Without Node or
the installed SDK, these tests fail under CI=true and are skipped elsewhere, as the browser tests are.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from typing import Any

import pytest

from course_utils.simulator import Simulator

from conftest import MODEL, ROOT

JS_DIR = ROOT / "tests" / "js"
SDK_DIR = JS_DIR / "node_modules" / "@anthropic-ai" / "sdk"
SCRIPT_TIMEOUT = 60  # seconds; each script takes well under one


def pinned_version() -> str:
    """The SDK version tests/js/package-lock.json pins."""
    lock = json.loads((JS_DIR / "package-lock.json").read_text())
    return lock["packages"]["node_modules/@anthropic-ai/sdk"]["version"]


def _unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def node() -> str:
    """The `node` to run the scripts with; a missing Node or SDK fails under CI, else skips."""
    path = shutil.which("node")
    if path is None:
        _unavailable("Node.js not found: install Node 18+ and npm; `./course test` then installs the JavaScript SDK")
    installed = SDK_DIR / "package.json"
    if not installed.exists():
        _unavailable("The JavaScript SDK is not installed: `./course test` runs `npm ci --prefix tests/js`")
    version = json.loads(installed.read_text())["version"]
    if version != pinned_version():
        _unavailable(
            f"tests/js has @anthropic-ai/sdk {version}, the lock pins {pinned_version()}: "
            "run `npm ci --prefix tests/js` (./course test does)"
        )
    return path  # type: ignore[return-value]


def run_js(node: str, sim: Simulator, script: str) -> dict[str, Any]:
    """Run tests/js/<script> against the simulator; its JSON result, with `requests`: what the SDK sent."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}  # no real key, URL or token
    env["SIM_BASE_URL"] = sim.base_url
    proc = subprocess.run(
        [node, str(JS_DIR / script)], cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT
    )
    assert proc.returncode == 0, f"node {script} exited {proc.returncode}:\n{proc.stderr}"
    lines = proc.stdout.strip().splitlines()
    assert lines, f"node {script} printed nothing:\n{proc.stderr}"
    return json.loads(lines[-1])


def block_text(message: dict[str, Any]) -> str:
    return "".join(block["text"] for block in message["content"] if block["type"] == "text")


def check_usage(usage: dict[str, Any]) -> None:
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["cache_creation_input_tokens"] == 0 and usage["cache_read_input_tokens"] == 0


# -- what the JS SDK sends ------------------------------------------------------------------------------------------


def test_js_sdk_headers_are_accepted(node: str, fresh_sim: Simulator) -> None:
    result = run_js(node, fresh_sim, "raw_events.mjs")
    [sent] = result["requests"]
    headers = sent["headers"]
    assert sent["method"] == "POST" and sent["path"] == "/v1/messages"
    assert headers["anthropic-version"] == "2026-10-21"  # the same API version as the Python SDK 2.11
    assert headers["authorization"] == "Bearer test-key" and "x-api-key" not in headers  # the key as a bearer token
    assert headers["user-agent"] == f"Anthropic/JS {pinned_version()}"
    assert headers["x-stainless-lang"] == "js" and headers["x-stainless-retry-count"] == "0"
    assert headers["content-type"] == "application/json"
    [logged] = fresh_sim.requests()
    assert logged["status"] == 200 and logged["stream"] is True and logged["model"] == MODEL
    assert logged["request_id"] == result["requestID"] and logged["retry_count"] == 0


# -- (1) messages.stream(): text -------------------------------------------------------------------------------------


def test_stream_text_pieces_join_to_the_final_message(node: str, fresh_sim: Simulator) -> None:
    result = run_js(node, fresh_sim, "text_stream.mjs")
    final = result["final"]
    text = block_text(final)
    assert len(result["pieces"]) > 5 and "".join(result["pieces"]) == text == result["finalText"]
    assert result["lastSnapshot"] == text  # the 'text' event's second argument: the text so far
    assert "photosynthesis" in text.lower()
    assert final["model"] == "claude-haiku-4-5-20251001" and final["id"].startswith("msg_01")
    assert final["stop_reason"] == "end_turn" and final["stop_sequence"] is None
    # The raw events under the helper, and the helper's own events in the order it emits them.
    types = result["rawTypes"]
    assert types[:2] == ["message_start", "content_block_start"]
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(types[2:-3]) == {"content_block_delta"} and len(types[2:-3]) == len(result["pieces"])
    assert result["helperEvents"] == ["connect", "contentBlock", "message", "finalMessage", "end"]
    # Usage: message_delta's cumulative count is the final message's.
    check_usage(final["usage"])
    assert result["deltaUsage"]["output_tokens"] == final["usage"]["output_tokens"]
    assert result["requestID"] == fresh_sim.requests()[0]["request_id"]


# -- (2) create({stream: true}): raw events --------------------------------------------------------------------------


def test_create_stream_yields_raw_events_in_the_documented_order(node: str, fresh_sim: Simulator) -> None:
    result = run_js(node, fresh_sim, "raw_events.mjs")
    assert result["status"] == 200 and result["contentType"].startswith("text/event-stream")
    events = result["events"]
    shape = " ".join(
        {
            "message_start": "S",
            "content_block_start": "(",
            "content_block_delta": "d",
            "content_block_stop": ")",
            "message_delta": "D",
            "message_stop": "E",
        }[e["type"]]
        for e in events
    ).replace(" ", "")
    assert re.fullmatch(r"S(\(d+\))+DE", shape), shape  # no ping reaches the caller: the SDK drops them
    start = events[0]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and start["usage"]["input_tokens"] > 0
    block_events = [e for e in events if e["type"].startswith("content_block")]
    assert {e["index"] for e in block_events} == {0}
    assert events[1]["content_block"] == {"type": "text", "text": ""}
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    assert {d["type"] for d in deltas} == {"text_delta"} and "".join(d["text"] for d in deltas).strip()
    delta = events[-2]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] > 0


# -- (3) a tool stream -----------------------------------------------------------------------------------------------


def test_tool_stream_emits_input_json_and_a_parsed_tool_use(node: str, fresh_sim: Simulator) -> None:
    result = run_js(node, fresh_sim, "tool_stream.mjs")
    final = result["final"]
    assert final["stop_reason"] == "tool_use"
    tool_uses = [b for b in final["content"] if b["type"] == "tool_use"]
    # Forced tool use (tool_choice any): the call comes first, with no text before it (notes/api-today.md).
    assert [b["type"] for b in final["content"]] == ["tool_use"], [b["type"] for b in final["content"]]
    tool_use = tool_uses[0]
    assert tool_use["name"] == "get_weather" and tool_use["id"].startswith("toolu_01")
    assert isinstance(tool_use["input"], dict) and tool_use["input"]["location"] == "Paris"  # parsed, not a string
    index = final["content"].index(tool_use)
    start = next(s for s in result["starts"] if s["index"] == index)
    opened = start["content_block"]  # (newer API versions may add fields such as `caller`)
    assert opened["type"] == "tool_use" and opened["id"] == tool_use["id"] and opened["name"] == "get_weather"
    assert opened["input"] == {}  # the input arrives only as input_json_delta fragments
    # The raw input_json_delta fragments, and the helper's 'inputJson' events: one per fragment, in order.
    fragments = [d["partial_json"] for i, kind, d in result["deltas"] if kind == "input_json_delta"]
    assert all(i == index for i, kind, _ in result["deltas"] if kind == "input_json_delta")
    assert len(fragments) > 2 and json.loads("".join(fragments)) == tool_use["input"]
    assert [partial for partial, _ in result["inputJson"]] == fragments
    snapshots = [snapshot for _, snapshot in result["inputJson"]]
    assert all(isinstance(s, dict) for s in snapshots) and snapshots[-1] == tool_use["input"]
    check_usage(final["usage"])


# -- (4) thinking ----------------------------------------------------------------------------------------------------


def test_thinking_stream_emits_thinking_then_one_signature_then_text(node: str, fresh_sim: Simulator) -> None:
    result = run_js(node, fresh_sim, "thinking_stream.mjs")
    assert result["error"] is None, result["error"]
    content = result["final"]["content"]
    assert [b["type"] for b in content[:2]] == ["thinking", "text"], [b["type"] for b in content]
    thinking = content[0]
    assert thinking["thinking"].strip() and isinstance(thinking["signature"], str) and thinking["signature"]
    # The helper's 'thinking' events carry the deltas and the thinking so far; 'signature' fires once.
    deltas = [delta for delta, _ in result["thinking"]]
    assert deltas and "".join(deltas) == thinking["thinking"]
    assert result["thinking"][-1][1] == thinking["thinking"]
    assert result["signatures"] == [thinking["signature"]]
    # 'text' carries only the answer, never the thinking.
    assert "".join(result["text"]) == block_text(result["final"]) and block_text(result["final"]).strip()
    # The wire order of block 0: start (empty thinking and signature), thinking_delta+, one signature_delta, stop.
    block0 = [(kind, detail) for kind, index, detail in result["raw"] if index == 0]
    assert block0[0] == ("content_block_start", {"type": "thinking", "thinking": "", "signature": ""})
    kinds = [detail if kind == "content_block_delta" else kind for kind, detail in block0[1:]]
    assert kinds == ["thinking_delta"] * len(deltas) + ["signature_delta", "content_block_stop"], kinds
    # ...and block 0 ends before block 1 starts.
    positions = [(kind, index) for kind, index, _ in result["raw"]]
    assert positions.index(("content_block_stop", 0)) < positions.index(("content_block_start", 1))
    assert result["final"]["stop_reason"] == "end_turn"
    check_usage(result["final"]["usage"])


# -- (5) an HTTP error before the stream -----------------------------------------------------------------------------


def test_errors_before_the_stream_map_to_the_sdk_error_classes(node: str, fresh_sim: Simulator) -> None:
    results = run_js(node, fresh_sim, "errors.mjs")["results"]
    for how in ("stream", "create"):  # messages.stream() and messages.create({stream: true})
        check_errors_before_the_stream(results, how)
    overloaded = results["overloaded"]
    assert overloaded["error"]["name"] == "OverloadedError" and overloaded["error"]["status"] == 529
    assert "InternalServerError" in overloaded["error"]["instanceOf"] and overloaded["attempts"] == 1
    log = fresh_sim.requests()
    assert [entry["status"] for entry in log] == [400, 400, 404, 404, 529]


def check_errors_before_the_stream(results: dict[str, Any], how: str) -> None:
    missing = results[f"missing_max_tokens/{how}"]
    assert missing["error"]["name"] == "BadRequestError" and missing["error"]["status"] == 400
    assert missing["error"]["instanceOf"] == ["APIError", "BadRequestError", "AnthropicError"]
    assert missing["error"]["type"] == "invalid_request_error"
    assert missing["error"]["apiMessage"] == "max_tokens: Field required"
    unknown = results[f"unknown_model/{how}"]
    assert unknown["error"]["name"] == "NotFoundError" and unknown["error"]["status"] == 404
    assert unknown["error"]["type"] == "not_found_error" and "claude-nonexistent-9" in unknown["error"]["apiMessage"]
    for case in (missing, unknown):
        assert case["attempts"] == 1  # a 4xx is not retried
        assert case["error"]["requestID"].startswith("req_01")
        assert case["error"]["error"]["request_id"] == case["error"]["requestID"]  # body and header agree
        if how == "stream":
            assert case["emitted"] == case["error"]["name"]  # MessageStream's 'error' event carries the same error


# -- (6) an error event in the middle of the stream ------------------------------------------------------------------


def test_midstream_error_event_raises_after_the_earlier_events(node: str, fresh_sim: Simulator) -> None:
    result = run_js(node, fresh_sim, "midstream_error.mjs")
    for how in ("stream", "create"):
        error = result[how]["error"]
        assert error is not None, f"{how}: the stream ended without the error"
        # A plain APIError (no status: the HTTP status was 200), typed by the event's error.type.
        assert error["name"] == "APIError" and error["instanceOf"] == ["APIError", "AnthropicError"]
        assert error["status"] is None and error["type"] == "overloaded_error" and error["apiMessage"] == "Overloaded"
        assert error["error"] == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        assert error["requestID"].startswith("req_01")
        assert result[how]["attempts"] == 1  # not retried
    stream = result["stream"]
    assert stream["emitted"] == "APIError" and stream["pieces"]  # the text before the fault was delivered
    snapshot = stream["snapshot"]
    assert snapshot["stop_reason"] is None and block_text(snapshot) == "".join(stream["pieces"])
    events = result["create"]["events"]
    assert events[:2] == ["message_start", "content_block_start"] and "content_block_delta" in events
    assert "message_stop" not in events
    log = fresh_sim.requests()
    assert [(entry["status"], entry["fault"]) for entry in log] == [(200, "error_midstream")] * 2
