"""Byte-level fidelity: the simulator's SSE follows the wire format, and the SDK accumulates it as we do.

The reference is /work/shared/notes/anthropic-wire-format.md (sections 3 and 4). Each stream is read raw with httpx,
parsed twice (our `course_utils.sse` and the SDK's own `SSEDecoder`), checked against the grammar, then accumulated
by `course_utils.accumulator` and compared with what the SDK's `get_final_message()` makes of the same request.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import anthropic
import httpx
import pytest
from anthropic._streaming import SSEDecoder
from hypothesis import given, settings
from hypothesis import strategies as st

from course_utils.accumulator import accumulate_sse
from course_utils.simulator import Simulator
from course_utils.simulator.plan import make_plan
from course_utils.simulator.replies import Reply, ToolCall
from course_utils.simulator.tokens import split_tokens
from course_utils.sse import parse_sse

from recorded import missing, sse_bodies

MODEL = "claude-haiku-4-5"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Get the current weather in a given location",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
}
REQUESTS = {
    "text": {"model": MODEL, "max_tokens": 300, "messages": [{"role": "user", "content": "Explain tokens briefly"}]},
    "tool": {
        "model": MODEL,
        "max_tokens": 300,
        "tools": [WEATHER_TOOL],
        "messages": [{"role": "user", "content": "What's the weather in Paris?"}],
    },
    "max_tokens": {"model": MODEL, "max_tokens": 9, "messages": [{"role": "user", "content": "Tell me about Python"}]},
    "stop_sequence": {
        "model": MODEL,
        "max_tokens": 50,
        "stop_sequences": [", 4"],
        "messages": [{"role": "user", "content": "Count to 10"}],
    },
}
RATELIMIT = [
    f"anthropic-ratelimit-{kind}-{part}"
    for kind in ("requests", "tokens", "input-tokens", "output-tokens")
    for part in ("limit", "remaining", "reset")
]


def fetch_raw(sim: Simulator, body: dict[str, Any]) -> tuple[httpx.Headers, bytes]:
    """The response headers and the exact body bytes of a streaming request."""
    with httpx.stream(
        "POST",
        sim.base_url + "/v1/messages",
        json={**body, "stream": True},
        headers={"authorization": "Bearer test", "anthropic-version": "2026-10-21"},
    ) as response:
        assert response.status_code == 200
        return response.headers, b"".join(response.iter_raw())


def sdk_final(sim: Simulator, body: dict[str, Any]) -> dict[str, Any]:
    """`client.messages.stream(...).get_final_message()` over real HTTP, as a plain dict.

    Normalisation: `to_dict(mode="json")` keeps only fields that were set (so the SDK's defaults for fields the
    wire never carried do not appear) and `warnings=False` silences pydantic about block types this SDK version does
    not model (compaction, fallback in the recorded fixtures); the request id is a private attribute, not a field.
    """
    client = anthropic.Anthropic(base_url=sim.base_url, api_key="test", max_retries=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with client.messages.stream(**body) as stream:
            return stream.get_final_message().to_dict(mode="json", warnings=False)


def events_of(body: bytes) -> list[tuple[str | None, str]]:
    """(event, data) pairs by our parser, checked equal to the SDK decoder's."""
    ours = [(e.event, e.data) for e in parse_sse([body], strict_eof=True)]
    sdks = [(e.event, e.data) for e in SSEDecoder().iter_bytes(iter([body]))]
    assert ours == sdks
    return ours


@pytest.mark.parametrize("kind", list(REQUESTS))
def test_stream_bytes_follow_the_wire_format(fresh_sim: Simulator, kind: str) -> None:
    headers, body = fetch_raw(fresh_sim, REQUESTS[kind])
    assert headers["content-type"] == "text/event-stream; charset=utf-8"
    assert headers["cache-control"] == "no-cache"
    assert headers["transfer-encoding"] == "chunked"
    assert headers["request-id"].startswith("req_01")
    assert all(headers[name] for name in RATELIMIT)

    # Framing: "event: NAME\ndata: JSON\n\n" for every event, the last one included.
    assert body.endswith(b"\n\n")
    for frame in body[:-2].split(b"\n\n"):
        event_line, data_line = frame.split(b"\n")
        assert event_line.startswith(b"event: ") and data_line.startswith(b"data: ")

    events = events_of(body)
    payloads = [json.loads(data) for _, data in events]
    names = [name for name, _ in events]
    assert names == [p["type"] for p in payloads]  # every event: line equals the JSON type

    # Grammar: message_start, one ping right after the first block start, blocks in order, message_delta, stop.
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert names[1] == "content_block_start" and names[2] == "ping" and names.count("ping") == 1
    blocks = [p for p in payloads if p["type"].startswith("content_block")]
    started = [p["index"] for p in blocks if p["type"] == "content_block_start"]
    assert started == list(range(len(started)))
    open_index = None
    for p in blocks:
        if p["type"] == "content_block_start":
            assert open_index is None
            open_index = p["index"]
        else:
            assert p["index"] == open_index
            if p["type"] == "content_block_stop":
                open_index = None
    assert open_index is None

    start, delta = payloads[0]["message"], payloads[-2]
    assert start["content"] == [] and start["stop_reason"] is None and start["usage"]["output_tokens"] == 1
    assert delta["usage"]["input_tokens"] == start["usage"]["input_tokens"] > 0  # cumulative usage repeats input
    whole = httpx.post(
        fresh_sim.base_url + "/v1/messages",
        json=REQUESTS[kind],
        headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
    ).json()
    assert delta["usage"]["output_tokens"] == whole["usage"]["output_tokens"]  # the total, not one delta's share
    assert (
        delta["delta"]["stop_reason"]
        == whole["stop_reason"]
        == kind.replace("text", "end_turn").replace("tool", "tool_use")
    )

    tool_deltas = [p["delta"]["partial_json"] for p in blocks if p.get("delta", {}).get("type") == "input_json_delta"]
    assert (tool_deltas[0] == "") if kind == "tool" else not tool_deltas


@pytest.mark.parametrize("kind", list(REQUESTS))
def test_our_accumulation_equals_the_sdks_final_message(fresh_sim: Simulator, kind: str) -> None:
    _, body = fetch_raw(fresh_sim, REQUESTS[kind])
    assert accumulate_sse(body) == sdk_final(fresh_sim, REQUESTS[kind])


def test_same_request_same_bytes(fresh_sim: Simulator) -> None:
    first, second = fetch_raw(fresh_sim, REQUESTS["tool"]), fetch_raw(fresh_sim, REQUESTS["tool"])
    assert first[1] == second[1]  # even the msg_ and toolu_ ids: they derive from the request
    assert first[0]["request-id"] != second[0]["request-id"]  # the request id is per request, as on the real API


@pytest.mark.parametrize("recorded", sse_bodies())
def test_every_recorded_stream_replayed_over_http_gives_the_same_final_message(
    fresh_sim: Simulator, recorded: bytes | None
) -> None:
    if recorded is None:
        missing()
    assert recorded is not None
    fresh_sim.replay(recorded)
    sdk = sdk_final(fresh_sim, REQUESTS["text"])  # the request does not matter: the recorded bytes are served
    assert sdk == accumulate_sse(recorded)
    assert sdk["content"] and fresh_sim.stats()["streams_completed"] == 1


def test_the_fixture_set_is_the_expected_one() -> None:
    ids = {param.id for param in sse_bodies()}
    if ids == {"fixtures-missing"}:
        missing()
    assert {"basic_response.txt", "tool_use_response.txt", "stream-a-refusal.sse"} <= ids
    assert sum("#" in i for i in ids) >= 3  # the SSE replies inside recorded/*.json


@settings(max_examples=150, deadline=None)
@given(
    tool_input=st.dictionaries(
        st.text(min_size=1, max_size=12),
        st.one_of(st.text(max_size=30), st.integers(), st.booleans(), st.none()),
        min_size=1,
        max_size=4,
    ),
    max_tokens=st.integers(1, 80),
)
def test_tool_json_fragments_reassemble_and_are_counted_exactly(tool_input: dict[str, Any], max_tokens: int) -> None:
    body = {"model": MODEL, "max_tokens": max_tokens, "messages": [{"role": "user", "content": "Go"}]}
    reply = Reply("Let me check.", ToolCall(id="toolu_01x", name="lookup", input=tool_input))
    plan = make_plan(body, reply, msg_id="msg_01x", model=MODEL, speed=0)
    raw = json.dumps(tool_input)
    available = len(split_tokens(reply.text)) + len(split_tokens(raw))
    assert plan.output_tokens == min(max_tokens, available)  # max_tokens stops exactly there
    if plan.tool is None:  # the budget ran out inside the text
        assert plan.stop_reason == "max_tokens" and plan.output_tokens == max_tokens
        return
    assert plan.json_chunks[0] == "" and raw.startswith("".join(plan.json_chunks))
    if max_tokens >= available:  # the whole call was sent: it parses back, and was cut inside its first key
        assert plan.stop_reason == "tool_use" and json.loads("".join(plan.json_chunks)) == tool_input
        key_json = json.dumps(next(iter(tool_input)))
        cuts = {len("".join(plan.json_chunks[:i])) for i in range(1, len(plan.json_chunks))}
        assert len(key_json) < 4 or any(2 < cut < 1 + len(key_json) - 1 for cut in cuts)
