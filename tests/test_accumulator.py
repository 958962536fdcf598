"""Tests for course_utils.accumulator: our dict-based accumulation must equal the SDK's own."""

from __future__ import annotations

import json
import warnings
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic._models import construct_type
from anthropic._streaming import SSEDecoder
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import RawMessageStreamEvent

from course_utils.accumulator import MessageAccumulator, StreamError, accumulate, accumulate_sse
from course_utils.sse import encode_event, parse_sse

from recorded import require, sse_bodies

# ---------------------------------------------------------------------------------------------
# Fixtures from anthropics/anthropic-sdk-python (see /work/shared/fixtures/.../README.md)


SSE_BODIES = sse_bodies()


# ---------------------------------------------------------------------------------------------
# The SDK's own accumulation, two ways


def sdk_snapshot_dict(snapshot: Any) -> dict[str, Any]:
    """The SDK's snapshot as a plain JSON dict: the same shape as the API's Message JSON.

    `to_dict()` excludes unset fields, so only keys that came over the wire (or that the SDK
    assigned) appear; the SDK's private `json_bufs` live outside the model and never show.
    warnings=False silences pydantic's complaint about blocks of a type the SDK doesn't know
    (compaction, fallback): it builds them as text blocks but keeps their real fields.
    """
    return snapshot.to_dict(mode="json", warnings=False)


def sdk_accumulate(body: bytes) -> dict[str, Any]:
    """Accumulate as the SDK does, step by step (Stream.__stream__ then MessageStream.__stream__)."""
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for sse in SSEDecoder().iter_bytes(iter([body])):
        # anthropic._streaming.Stream.__stream__: its filters, in its order.
        if sse.event == "ping" or sse.event is None:
            continue
        if sse.event == "error":
            raise AssertionError(f"unexpected error event in fixture: {sse.data}")
        if not sse.data:
            continue
        # What client._process_response_data does for a non-strict client.
        event = construct_type(type_=RawMessageStreamEvent, value=sse.json())
        # MessageStream.__stream__ passes events before message_start through un-accumulated.
        if snapshot is None and event.type != "message_start":
            continue
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=json_bufs)
    assert snapshot is not None
    return sdk_snapshot_dict(snapshot)


def mock_client(body: bytes) -> anthropic.Anthropic:
    """A real SDK client whose HTTP transport replies with `body` as an SSE stream."""

    def reply(request: httpx2.Request) -> httpx2.Response:
        headers = {"content-type": "text/event-stream; charset=utf-8", "request-id": "req_test"}
        return httpx2.Response(200, headers=headers, content=body)

    http_client = httpx2.Client(transport=httpx2.MockTransport(reply))
    return anthropic.Anthropic(api_key="test", http_client=http_client, max_retries=0)


def sdk_stream(body: bytes) -> Any:
    return mock_client(body).messages.stream(
        model="claude-opus-4-7", max_tokens=1024, messages=[{"role": "user", "content": "Hi"}]
    )


def sdk_final_message(body: bytes) -> dict[str, Any]:
    """End to end: what `client.messages.stream(...).get_final_message()` returns for this body."""
    with sdk_stream(body) as stream:
        return sdk_snapshot_dict(stream.get_final_message())


# ---------------------------------------------------------------------------------------------
# Every real stream: ours == the SDK's


@pytest.mark.parametrize("body", SSE_BODIES)
def test_matches_sdk_accumulate_event(body: bytes | None) -> None:
    body = require(body)
    assert accumulate_sse(body) == sdk_accumulate(body)


@pytest.mark.parametrize("body", SSE_BODIES)
def test_matches_sdk_get_final_message(body: bytes | None) -> None:
    body = require(body)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # see sdk_snapshot_dict
        assert accumulate_sse(body) == sdk_final_message(body)


@pytest.mark.parametrize("body", SSE_BODIES)
def test_text_matches_sdk(body: bytes | None) -> None:
    body = require(body)
    accumulator = MessageAccumulator()
    for sse in parse_sse([body]):
        if sse.event not in (None, "ping"):
            accumulator.feed(sse.json())
    with sdk_stream(body) as stream:
        sdk_text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert accumulator.text == sdk_text
    assert accumulator.stop_reason == final.stop_reason
    assert accumulator.usage == final.usage.to_dict(mode="json")
    assert accumulator.done  # our parser keeps a final message_stop that lacks its blank line


def test_fixture_set_is_complete() -> None:
    if SSE_BODIES[0].values[0] is None:
        require(None)
    ids = {param.id for param in SSE_BODIES}
    assert {"basic_response.txt", "tool_use_response.txt", "stream-a-refusal.sse"} <= ids
    assert sum("#" in i for i in ids) >= 3  # SSE replies inside recorded/*.json


# ---------------------------------------------------------------------------------------------
# tool_use: the partial-JSON snapshot grows (notes §4.2, verified with the SDK)

TOOL_USE_EVENTS: list[tuple[str, dict[str, Any]]] = [
    (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "model": "claude-sonnet-4-5-20250929",
                "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
                "type": "message",
                "role": "assistant",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 472,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
                    "output_tokens": 1,
                    "service_tier": "standard",
                },
            },
        },
    ),  # noqa: E501
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ("ping", {"type": "ping"}),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "Let me check the weather."},
        },
    ),  # noqa: E501
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    (
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                "name": "get_weather",
                "input": {},
            },
        },
    ),  # noqa: E501
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}},
    ),  # noqa: E501
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"location":'},
        },
    ),  # noqa: E501
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ' "San Fra'}},
    ),  # noqa: E501
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": 'ncisco, CA"'},
        },
    ),  # noqa: E501
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": ', "unit": "fah'},
        },
    ),  # noqa: E501
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": 'renheit"}'}},
    ),  # noqa: E501
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 89},
        },
    ),  # noqa: E501
    ("message_stop", {"type": "message_stop"}),
]
TOOL_USE_BODY = b"".join(encode_event(name, data) for name, data in TOOL_USE_EVENTS)
SF = {"location": "San Francisco, CA"}
SF_F = {"location": "San Francisco, CA", "unit": "fahrenheit"}


def test_tool_input_snapshot_grows() -> None:
    accumulator = MessageAccumulator()
    snapshots = []
    for _, event in TOOL_USE_EVENTS:
        accumulator.feed(event)
        if event["type"] == "content_block_delta" and event["delta"]["type"] == "input_json_delta":
            snapshots.append(accumulator.message["content"][1]["input"])
    # An unfinished key or string is left out rather than guessed.
    assert snapshots == [{}, {}, {}, SF, SF, SF_F]
    assert all(isinstance(s, dict) for s in snapshots)
    assert accumulator.message["content"] == [
        {"type": "text", "text": "Let me check the weather."},
        {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather", "input": SF_F},
    ]
    assert accumulator.text == "Let me check the weather."
    assert accumulator.stop_reason == "tool_use"
    assert accumulator.usage["output_tokens"] == 89
    assert accumulator.usage["input_tokens"] == 472  # kept from message_start
    assert accumulator.done


def test_tool_input_snapshots_match_sdk_input_json_events() -> None:
    accumulator = MessageAccumulator()
    ours = []
    for sse in parse_sse([TOOL_USE_BODY]):
        if sse.event != "ping":
            accumulator.feed(sse.json())
            if sse.event == "content_block_delta" and sse.json()["delta"]["type"] == "input_json_delta":
                ours.append(accumulator.message["content"][1]["input"])
    with sdk_stream(TOOL_USE_BODY) as stream:
        theirs = [event.snapshot for event in stream if event.type == "input_json"]
        final = sdk_snapshot_dict(stream.get_final_message())
    assert ours == theirs
    assert accumulator.message == final


def test_invalid_tool_json_raises_value_error() -> None:
    accumulator = MessageAccumulator()
    for _, event in TOOL_USE_EVENTS[:6]:
        accumulator.feed(event)
    bad = {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"a": x'}}
    with pytest.raises(ValueError, match="Unable to parse tool input JSON"):
        accumulator.feed(bad)


# ---------------------------------------------------------------------------------------------
# Mid-stream error (notes §5.3)

MESSAGE_START = {
    "type": "message_start",
    "message": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 25, "output_tokens": 1},
    },
}  # noqa: E501
TEXT_START = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}


def text_delta(text: str, index: int = 0) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}


OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def test_error_event_raises_and_keeps_partial_text() -> None:
    accumulator = MessageAccumulator()
    for event in (MESSAGE_START, TEXT_START, text_delta("Hello"), text_delta(" there"), text_delta("!")):
        accumulator.feed(event)
    with pytest.raises(StreamError) as excinfo:
        accumulator.feed(OVERLOADED)
    assert excinfo.value.error == {"type": "overloaded_error", "message": "Overloaded"}
    assert excinfo.value.type == "overloaded_error"
    assert str(excinfo.value) == "overloaded_error: Overloaded"
    assert accumulator.error == {"type": "overloaded_error", "message": "Overloaded"}
    assert accumulator.text == "Hello there!"
    assert accumulator.stop_reason is None
    assert accumulator.usage == {"input_tokens": 25, "output_tokens": 1}
    assert not accumulator.done


def test_error_event_matches_sdk_partial_snapshot() -> None:
    events = [MESSAGE_START, TEXT_START, text_delta("Hello"), text_delta(" there"), text_delta("!")]
    body = b"".join(encode_event(e["type"], e) for e in events) + encode_event("error", OVERLOADED)
    with pytest.raises(StreamError):
        accumulate_sse(body)
    with sdk_stream(body) as stream:
        with pytest.raises(anthropic.APIStatusError) as excinfo:
            stream.get_final_message()
        sdk_partial = sdk_snapshot_dict(stream.current_message_snapshot)
    assert excinfo.value.status_code == 200
    accumulator = MessageAccumulator()
    for event in events:
        accumulator.feed(event)
    assert accumulator.message == sdk_partial


# ---------------------------------------------------------------------------------------------
# Individual rules


def test_events_before_message_start_are_ignored() -> None:
    accumulator = MessageAccumulator()
    accumulator.feed(TEXT_START)
    accumulator.feed({"type": "message_stop"})
    assert accumulator.message is None
    assert accumulator.text == "" and accumulator.usage is None and not accumulator.done
    accumulator.feed(MESSAGE_START)
    assert accumulator.message["content"] == []


def test_ping_unknown_and_repeated_start_are_ignored() -> None:
    accumulator = MessageAccumulator()
    accumulator.feed(MESSAGE_START)
    before = json.loads(json.dumps(accumulator.message))
    accumulator.feed({"type": "ping"})
    accumulator.feed({"type": "some_future_event", "x": 1})
    accumulator.feed({"type": "message_start", "message": {"id": "other", "content": []}})
    assert accumulator.message == before


def test_caller_events_are_not_mutated() -> None:
    start = json.loads(json.dumps(MESSAGE_START))
    block = json.loads(json.dumps(TEXT_START))
    accumulate([start, block, text_delta("hi")])
    assert start == MESSAGE_START and block == TEXT_START


def test_delta_for_unknown_index_raises_index_error() -> None:
    accumulator = MessageAccumulator()
    accumulator.feed(MESSAGE_START)
    with pytest.raises(IndexError):
        accumulator.feed(text_delta("x", index=3))


def test_thinking_signature_and_citations() -> None:
    citation_a = {
        "type": "char_location",
        "cited_text": "The sky",
        "document_index": 0,
        "document_title": "Doc",
        "start_char_index": 0,
        "end_char_index": 7,
    }  # noqa: E501
    citation_b = dict(citation_a, cited_text="is blue", start_char_index=8, end_char_index=15)
    events = [
        MESSAGE_START,
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },  # noqa: E501
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me "}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "think."}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig-1"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig-2"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": "", "citations": None}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "citations_delta", "citation": citation_a}},
        text_delta("The sky", index=1),
        {"type": "content_block_delta", "index": 1, "delta": {"type": "citations_delta", "citation": citation_b}},
        text_delta(" is blue.", index=1),
        # Deltas that don't fit their block are ignored, as in the SDK.
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ignored"}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "thinking_delta", "thinking": "ignored"}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{"}},
        {"type": "content_block_stop", "index": 1},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 30},
        },  # noqa: E501
        {"type": "message_stop"},
    ]
    message = accumulate(events)
    assert message["content"] == [
        {"type": "thinking", "thinking": "Let me think.", "signature": "sig-2"},
        {"type": "text", "text": "The sky is blue.", "citations": [citation_a, citation_b]},
    ]
    body = b"".join(encode_event(e["type"], e) for e in events)
    assert accumulate_sse(body) == message == sdk_accumulate(body) == sdk_final_message(body)


def test_citations_created_when_block_has_no_citations_key() -> None:
    citation = {
        "type": "char_location",
        "cited_text": "x",
        "document_index": 0,
        "document_title": None,
        "start_char_index": 0,
        "end_char_index": 1,
    }  # noqa: E501
    events = [
        MESSAGE_START,
        TEXT_START,
        {"type": "content_block_delta", "index": 0, "delta": {"type": "citations_delta", "citation": citation}},
    ]  # noqa: E501
    assert accumulate(events)["content"] == [{"type": "text", "text": "", "citations": [citation]}]


def test_message_delta_usage_rules() -> None:
    start = json.loads(json.dumps(MESSAGE_START))
    start["message"]["usage"] = {"input_tokens": 25, "cache_read_input_tokens": 5, "output_tokens": 1}
    events = [
        start,
        {
            "type": "message_delta",
            "delta": {
                "stop_reason": "max_tokens",
                "stop_sequence": None,
                "container": {"id": "c1", "expires_at": "2026-02-25T20:07:37.475893Z"},
            },  # noqa: E501
            "usage": {
                "output_tokens": 9,
                "input_tokens": None,
                "cache_creation_input_tokens": 3,
                "server_tool_use": {"web_search_requests": 1},
                "fallback_credit": {"status": "ignored"},
            },  # noqa: E501
        },
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 12}},
    ]
    message = accumulate(events)
    # Overwritten: stop_reason, stop_sequence, stop_details (None when absent), output_tokens.
    # Only when present and not null: input/cache token counts, server_tool_use, container.
    assert message["stop_reason"] == "end_turn"
    assert message["stop_sequence"] is None and message["stop_details"] is None
    assert message["container"] == {"id": "c1", "expires_at": "2026-02-25T20:07:37.475893Z"}
    assert message["usage"] == {
        "input_tokens": 25,
        "cache_read_input_tokens": 5,
        "cache_creation_input_tokens": 3,
        "server_tool_use": {"web_search_requests": 1},
        "output_tokens": 12,
    }
    body = b"".join(encode_event(e["type"], e) for e in events)
    assert message == sdk_accumulate(body)


def test_accumulate_without_message_start_raises() -> None:
    with pytest.raises(ValueError, match="message_start"):
        accumulate([{"type": "ping"}])


def test_accumulate_sse_skips_ping_and_nameless_events_like_the_sdk() -> None:
    events = [MESSAGE_START, TEXT_START, text_delta("Hi")]
    body = b"".join(encode_event(e["type"], e) for e in events)
    # A data-only event (no `event:` line) is dropped by the SDK's Stream, however valid its JSON.
    body += b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" lost"}}\n\n'
    body += encode_event(
        "ping", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}}
    )
    message = accumulate_sse(body)
    assert message["content"] == [{"type": "text", "text": "Hi"}]
    assert message == sdk_accumulate(body) == sdk_final_message(body)


@pytest.mark.parametrize(
    "extra",
    [
        {"headers": {"x-sim-future-events": "1"}, "body": {}},  # an unknown event type and an unknown delta type
        {"headers": {}, "body": {"max_tokens": 2000, "thinking": {"type": "enabled", "budget_tokens": 1024}}},
    ],
)
def test_simulator_streams_with_future_events_and_thinking_match_the_sdk(fresh_sim, extra: dict) -> None:
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 40,
        "stream": True,
        "messages": [{"role": "user", "content": "Why is the sky blue?"}],
        **extra["body"],
    }
    headers = {"x-api-key": "test-key", "anthropic-version": "2023-06-01", **extra["headers"]}
    raw = httpx2.post(f"{fresh_sim.base_url}/v1/messages", json=body, headers=headers).content
    if extra["headers"]:
        assert b"event: future_event" in raw and b'"future_delta"' in raw
    else:
        assert b'"signature_delta"' in raw
    assert accumulate_sse(raw) == sdk_accumulate(raw)
