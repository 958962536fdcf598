"""Tests for course_utils.sse: the teaching SSE parser, checked against the SDK's own decoder."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import AsyncIterator

import pytest
from anthropic._streaming import SSEDecoder
from hypothesis import given, settings
from hypothesis import strategies as st

from course_utils.sse import ServerSentEvent, SSEParser, aparse_sse, encode_event, parse_sse

from recorded import require, sse_bodies

# ---------------------------------------------------------------------------------------------
# Helpers


def parse_all(body: bytes, *, strict_eof: bool = False) -> list[ServerSentEvent]:
    """Feed the whole body in one chunk, then close."""
    return list(parse_sse([body], strict_eof=strict_eof))


def parse_chunks(chunks: list[bytes], *, strict_eof: bool = False) -> list[ServerSentEvent]:
    return list(parse_sse(chunks, strict_eof=strict_eof))


def split_at(body: bytes, points: set[int] | list[int]) -> list[bytes]:
    """Cut `body` at the given byte offsets."""
    edges = [0, *sorted(p for p in set(points) if 0 < p < len(body)), len(body)]
    return [body[a:b] for a, b in itertools.pairwise(edges)]


def one_byte_chunks(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]


def pairs(events: list) -> list[tuple[str | None, str]]:
    """(event, data) pairs; works for our events and for the SDK's."""
    return [(e.event, e.data) for e in events]


def sdk_events(chunks: list[bytes]) -> list[tuple[str | None, str]]:
    return pairs(list(SSEDecoder().iter_bytes(iter(chunks))))


# ---------------------------------------------------------------------------------------------
# Fixtures from anthropics/anthropic-sdk-python (see /work/shared/fixtures/.../README.md)


# ---------------------------------------------------------------------------------------------
# Basic fields


def test_single_event() -> None:
    events = parse_all(b'event: ping\ndata: {"type": "ping"}\n\n')
    assert events == [ServerSentEvent(event="ping", data='{"type": "ping"}')]
    assert events[0].json() == {"type": "ping"}


def test_event_is_frozen() -> None:
    event = ServerSentEvent(event="x", data="1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.data = "2"  # type: ignore[misc]


def test_multi_line_data_is_joined_with_newline() -> None:
    events = parse_all(b"data: first\ndata: second\ndata:\ndata: fourth\n\n")
    assert events[0].data == "first\nsecond\n\nfourth"


def test_comments_are_ignored() -> None:
    body = b": keep-alive\nevent: a\n:another comment\ndata: 1\n\n:trailing comment\n\n"
    assert pairs(parse_all(body)) == [("a", "1")]


def test_exactly_one_leading_space_is_stripped() -> None:
    events = parse_all(b"data:no space\n\ndata: one\n\ndata:  two\n\nevent:  spaced\ndata:x\n\n")
    assert pairs(events) == [(None, "no space"), (None, "one"), (None, " two"), (" spaced", "x")]


def test_colon_inside_value_is_kept() -> None:
    assert parse_all(b'data: {"a": "b:c"}\n\n')[0].data == '{"a": "b:c"}'


def test_field_without_colon_has_empty_value() -> None:
    # "data" alone is a data line with an empty value; "event" alone is an empty (= no) name.
    events = parse_all(b"event: named\nevent\ndata\n\n")
    assert events == [ServerSentEvent(event=None, data="")]


def test_event_without_data_is_not_dispatched() -> None:
    body = b"event: lonely\n\nretry: 10\n\nevent: real\ndata: 1\n\n"
    assert pairs(parse_all(body)) == [("real", "1")]


def test_empty_data_line_is_dispatched() -> None:
    assert pairs(parse_all(b"event: e\ndata:\n\n")) == [("e", "")]


def test_the_sdk_differs_on_events_without_data() -> None:
    # Documented difference: the SDK dispatches a data-less named event (then its Stream skips
    # it as "empty data"), while WHATWG, and we, drop it at the parser.
    body = b"event: lonely\n\n"
    assert sdk_events([body]) == [("lonely", "")]
    assert parse_all(body) == []


def test_empty_event_name_means_no_name() -> None:
    assert parse_all(b"event:\ndata: x\n\n")[0].event is None


def test_unknown_fields_are_ignored() -> None:
    body = b"event: a\nfoo: bar\nData: not data\nevents: nope\ndata: 1\n\n"
    assert pairs(parse_all(body)) == [("a", "1")]


def test_name_resets_after_each_event() -> None:
    assert pairs(parse_all(b"event: a\ndata: 1\n\ndata: 2\n\n")) == [("a", "1"), (None, "2")]


def test_id_field_persists_across_events() -> None:
    events = parse_all(b"id: 7\ndata: a\n\ndata: b\n\nid: 8\ndata: c\n\nid\ndata: d\n\n")
    assert [e.id for e in events] == ["7", "7", "8", ""]


def test_id_containing_null_is_ignored() -> None:
    events = parse_all(b"id: 1\ndata: a\n\nid: 2\x00x\ndata: b\n\n")
    assert [e.id for e in events] == ["1", "1"]


def test_retry_field() -> None:
    events = parse_all(b"retry: 3000\ndata: a\n\ndata: b\n\nretry: soon\ndata: c\n\nretry: -1\ndata: d\n\n")
    # Digits only (WHATWG); and retry belongs to the event it came with.
    assert [e.retry for e in events] == [3000, None, None, None]


# ---------------------------------------------------------------------------------------------
# Line endings


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_line_endings(eol: str) -> None:
    text = eol.join(["event: a", "data: 1", "data: 2", "", ": c", "event: b", "data: 3", "", ""])
    assert pairs(parse_all(text.encode())) == [("a", "1\n2"), ("b", "3")]


def test_mixed_line_endings() -> None:
    body = b"event: a\r\ndata: 1\rdata: 2\n\r\nevent: b\rdata: 3\r\r"
    assert pairs(parse_all(body)) == [("a", "1\n2"), ("b", "3")]


def test_crlf_split_between_cr_and_lf() -> None:
    body = b"event: a\r\ndata: 1\r\n\r\nevent: b\r\ndata: 2\r\n\r\n"
    for i, byte in enumerate(body):
        if byte == ord("\r"):
            chunks = [body[: i + 1], body[i + 1 :]]
            assert pairs(parse_chunks(chunks)) == [("a", "1"), ("b", "2")], chunks


def test_empty_chunk_between_cr_and_lf() -> None:
    assert pairs(parse_chunks([b"data: 1\r", b"", b"\ndata: 2\r\n\r\n"])) == [(None, "1\n2")]


def test_lone_cr_at_end_of_chunk_followed_by_a_new_line() -> None:
    # The "\r" ends a line; the next chunk starts a new line, not with an "\n" to swallow.
    assert pairs(parse_chunks([b"data: 1\r", b"\r", b"data: 2\r", b"\r"])) == [(None, "1"), (None, "2")]


def test_feed_returns_events_as_soon_as_they_are_complete() -> None:
    parser = SSEParser()
    assert parser.feed(b"event: a\ndata: 1\n") == []
    assert pairs(parser.feed(b"\nevent: b\nda")) == [("a", "1")]
    assert pairs(parser.feed(b"ta: 2\n\n")) == [("b", "2")]
    assert parser.close() == []


# ---------------------------------------------------------------------------------------------
# UTF-8


@pytest.mark.parametrize("text", ["Grüße, café, naïve", "emoji 😀👍🏽 and 中文", "→ arrows ←"])
def test_non_ascii_split_at_every_byte(text: str) -> None:
    body = encode_event("content_block_delta", {"text": text})
    for i in range(1, len(body)):
        events = parse_chunks([body[:i], body[i:]])
        assert events[0].json() == {"text": text}, i
    assert parse_chunks(one_byte_chunks(body))[0].json() == {"text": text}


def test_truncated_character_at_end_of_stream_raises() -> None:
    parser = SSEParser()
    parser.feed("data: 😀\n\n".encode()[:8])
    with pytest.raises(UnicodeDecodeError):
        parser.close()


# ---------------------------------------------------------------------------------------------
# End of stream


def test_close_flushes_final_event_without_blank_line() -> None:
    body = b'event: a\ndata: 1\n\nevent: message_stop\ndata: {"type":"message_stop"}\n'
    assert pairs(parse_all(body)) == [("a", "1"), ("message_stop", '{"type":"message_stop"}')]


def test_close_flushes_final_line_without_line_ending() -> None:
    assert pairs(parse_all(b"event: a\ndata: 1")) == [("a", "1")]


def test_strict_eof_drops_final_event_like_the_sdk() -> None:
    for body in (b"event: a\ndata: 1\n\nevent: b\ndata: 2\n", b"event: a\ndata: 1\n\nevent: b\ndata: 2"):
        assert pairs(parse_all(body, strict_eof=True)) == [("a", "1")]
        assert sdk_events([body]) == [("a", "1")]


def test_close_with_nothing_pending() -> None:
    assert SSEParser().close() == []
    assert pairs(parse_all(b"data: 1\n\n\n\n")) == [(None, "1")]


# ---------------------------------------------------------------------------------------------
# Convenience wrappers


def test_parse_sse_is_lazy_over_chunks() -> None:
    def chunks():
        yield b"data: 1\n\n"
        raise RuntimeError("network gone")

    events = parse_sse(chunks())
    assert next(events).data == "1"
    with pytest.raises(RuntimeError):
        next(events)


def test_aparse_sse() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for chunk in (b"event: a\nda", b"ta: \xc3", b"\xa9\n\nevent: b\ndata: 2"):
            yield chunk

    async def collect(strict_eof: bool) -> list[ServerSentEvent]:
        return [event async for event in aparse_sse(chunks(), strict_eof=strict_eof)]

    assert pairs(asyncio.run(collect(False))) == [("a", "é"), ("b", "2")]
    assert pairs(asyncio.run(collect(True))) == [("a", "é")]


# ---------------------------------------------------------------------------------------------
# encode_event


def test_encode_event_is_compact_utf8_json() -> None:
    data = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "café ☕"}}
    assert (
        encode_event("content_block_delta", data)
        == (
            'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            '"delta":{"type":"text_delta","text":"café ☕"}}\n\n'
        ).encode()
    )


def test_encode_event_sends_str_as_is() -> None:
    assert encode_event("ping", '{"type": "ping"}') == b'event: ping\ndata: {"type": "ping"}\n\n'


def test_encode_event_multi_line_str_round_trips() -> None:
    body = encode_event("note", "line 1\nline 2")
    assert body == b"event: note\ndata: line 1\ndata: line 2\n\n"
    assert pairs(parse_all(body)) == [("note", "line 1\nline 2")]


def test_encode_event_rejects_line_break_in_name() -> None:
    with pytest.raises(ValueError):
        encode_event("a\nb", {})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
).filter(lambda value: not isinstance(value, str))  # a str is sent as-is, tested below
event_names = st.text(min_size=1).filter(lambda s: "\r" not in s and "\n" not in s)


@given(name=event_names, data=json_values)
def test_encode_then_parse_round_trips(name: str, data: object) -> None:
    [event] = parse_all(encode_event(name, data))
    assert event.event == name  # the parser strips exactly the one space encode_event added
    assert event.json() == data


@given(name=event_names, data=st.text().map(lambda s: s.replace("\r", "")))
def test_encode_str_then_parse_round_trips(name: str, data: str) -> None:
    [event] = parse_all(encode_event(name, data))
    assert (event.event, event.data) == (name, data)


# ---------------------------------------------------------------------------------------------
# Properties: chunking never changes the result, and we agree with the SDK

# Pieces that exercise every branch: field names, colons, spaces, all line endings, multi-byte text.
pieces = st.sampled_from(
    ["event", "data", "id", "retry", "foo", ":", " ", "\n", "\r", "\r\n", "\n\n", "x", "12", "é", "😀", "中", "\x00"]
    + ["data: 1", "event: e", "id: 9", "retry: 5"]  # whole fields, so that multi-line events are common
)
streams = st.lists(pieces, max_size=60).map(lambda parts: "".join(parts).encode())


@settings(max_examples=300)
@given(body=streams, data=st.data(), strict_eof=st.booleans())
def test_any_split_gives_same_events(body: bytes, data: st.DataObject, strict_eof: bool) -> None:
    points = data.draw(st.sets(st.integers(0, max(len(body), 1))))
    whole = parse_all(body, strict_eof=strict_eof)
    assert parse_chunks(split_at(body, points), strict_eof=strict_eof) == whole
    assert parse_chunks(one_byte_chunks(body), strict_eof=strict_eof) == whole
    with_empty_chunks = [piece for byte in one_byte_chunks(body) for piece in (b"", byte, b"")]
    assert parse_chunks(with_empty_chunks, strict_eof=strict_eof) == whole


line_text = st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=12)
eols = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def sdk_compatible_streams(draw: st.DrawFn) -> bytes:
    """Streams where WHATWG and the SDK agree: every event has data, and no `id:` lines."""
    out = []
    n_events = draw(st.integers(0, 5))
    for i in range(n_events):
        lines = [f"data:{draw(line_text)}" for _ in range(draw(st.integers(1, 3)))]
        if draw(st.booleans()):
            lines.insert(draw(st.integers(0, len(lines))), f"event:{draw(line_text)}")
        if draw(st.booleans()):
            lines.insert(draw(st.integers(0, len(lines))), f":{draw(line_text)}")
        if draw(st.booleans()):
            lines.insert(draw(st.integers(0, len(lines))), "foo: bar")
        text = "".join(line + draw(eols) for line in lines)
        if i < n_events - 1 or draw(st.booleans()):  # the last event may lack its blank line
            text += draw(eols)
        out.append(text)
    return "".join(out).encode()


@settings(max_examples=300)
@given(body=sdk_compatible_streams(), data=st.data())
def test_agrees_with_sdk_decoder_on_generated_streams(body: bytes, data: st.DataObject) -> None:
    chunks = split_at(body, data.draw(st.sets(st.integers(0, max(len(body), 1)))))
    assert pairs(parse_chunks(chunks, strict_eof=True)) == sdk_events(chunks)


@pytest.mark.parametrize("body", sse_bodies())
def test_fixture_matches_sdk_decoder(body: bytes | None) -> None:
    body = require(body)
    expected = sdk_events([body])
    assert expected, "the SDK decoded no events: wrong fixture?"
    for chunks in ([body], split_at(body, range(0, len(body), 7)), one_byte_chunks(body)):
        assert pairs(parse_chunks(chunks, strict_eof=True)) == expected

    # Without strict_eof we also keep a final event that lacks its blank line (some .txt files).
    lenient = pairs(parse_all(body))
    if body.endswith((b"\n\n", b"\r\r", b"\r\n\r\n")):
        assert lenient == expected
    else:
        assert lenient[:-1] == expected
        assert lenient[-1][0] == "message_stop"
