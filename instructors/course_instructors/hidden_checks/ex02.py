"""Exercise 02, hidden checks: the rest of the SSE format, parsers that share state, odd events, errors mid-stream."""

from __future__ import annotations

from typing import Any

from course_utils.checks.base import expect, expect_equal, task_check
from course_utils.checks.env import Env
from course_utils.checks.ex02 import (
    ABOUT,
    accumulate_matches,
    decoded,
    expect_events,
    parse_in_chunks,
    raw_body,
    simplify,
    truth,
    wire_events,
)

MIXED = (
    b": a comment, e.g. a keep-alive\n"
    b"event: first\ndata: line one\ndata: line two\n\n"
    b"data:no space after the colon\n\n"
    b"event: ping\ndata: {}\nid: 7\nretry: 100\nunknown: field\n\n"
    b"event: \xc3\xa9t\xc3\xa9\ndata:  two spaces keep one\n\n"
)


@task_check("02.1", "the rest of the format: comments, multi-line data, no event name", visibility="after_published")
def sse_format(env: Env) -> None:
    want = truth(MIXED)
    expect_events(parse_in_chunks(env, [MIXED]), want, "a stream with comments and multi-line data")
    expect_events(
        parse_in_chunks(env, [MIXED[i : i + 3] for i in range(0, len(MIXED), 3)]), want, "the same in 3-byte chunks"
    )


@task_check("02.1", "CRLF line endings, even split between the CR and the LF", visibility="after_published", timeout=30)
def crlf(env: Env) -> None:
    body = raw_body(env, "Hi", 8).replace(b"\n", b"\r\n")
    want = truth(body)
    for cut in range(1, len(body)):
        expect_events(parse_in_chunks(env, [body[:cut], body[cut:]]), want, f"CRLF lines split at byte {cut}")


@task_check("02.1", "two parsers do not share state", visibility="after_published")
def independent_parsers(env: Env) -> None:
    body = raw_body(env, ABOUT, 30)
    first, second = env.call(env.learner()), env.call(env.learner())
    half = len(body) // 2
    got_first = env.call(first.feed, body[:half])
    got_second = env.call(second.feed, body)
    got_first += env.call(first.feed, body[half:])
    want = truth(body)
    expect_events(list(got_first), want, "the first parser, fed in two halves")
    expect_events(list(got_second), want, "a second parser used in between")


@task_check("02.2", "a reply cut short by max_tokens", visibility="after_published")
def accumulates_truncated(env: Env) -> None:
    accumulate_matches(env, "Write 500 words about the ocean.", 15)


@task_check("02.2", "ignores pings and event types it does not know", visibility="after_published")
def accumulates_unknown(env: Env) -> None:
    events = decoded(raw_body(env, ABOUT, 30))
    noisy: list[dict[str, Any]] = []
    for event in events:
        noisy.append(event)
        noisy.append({"type": "ping"})
    noisy.insert(3, {"type": "some_future_event", "detail": {"anything": True}})
    got = simplify(env.call(env.learner(), iter(noisy)))
    want = simplify(env.call(env.learner(), iter(events)))
    expect_equal(got, want, "the message from the same events with pings and an unknown event added")


@task_check("02.3", "yields the error event that ends a failed stream", visibility="after_published", timeout=20)
def error_event(env: Env) -> None:
    env.sim.inject("error_midstream", after=5)
    events = env.run("stream_events(...)", lambda: list(wire_events(env, ABOUT, 60)))
    expect(events and isinstance(events[-1], dict), "stream_events yielded nothing for a stream that failed")
    expect_equal(events[-1].get("type"), "error", "the type of the last event of a stream that failed mid-way")
    expect_equal(events[0].get("type"), "message_start", "the type of the first event")
