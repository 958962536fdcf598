"""Exercise 02, the SSE events: parse the wire yourself, whatever the chunk boundaries, and rebuild the message."""

from __future__ import annotations

import json
import time
from typing import Any

from .base import Task, expect, expect_equal, short, task_check
from .env import API_KEY, Env

# The course's parser and accumulator, and the SDK's, would do these tasks for the learner.
_PARSERS = ("course_utils.sse", "course_utils.accumulator", "anthropic")
_ACCUMULATORS = ("course_utils.accumulator", "course_utils.history", "anthropic.lib.streaming")

TASKS = (
    Task("02.1", "EventParser", "An incremental SSE parser", forbid=_PARSERS),
    Task("02.2", "accumulate", "Rebuild the final message from the events", forbid=_ACCUMULATORS),
    Task("02.3", "stream_events", "Read the events off the wire", forbid=_PARSERS),
)

ABOUT = "Tell me about the ocean."
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def raw_body(env: Env, prompt: str, max_tokens: int, **extra: Any) -> bytes:
    """The exact bytes the simulator streams for one request, read with plain HTTP."""
    import httpx2

    body = {**env.request(prompt, max_tokens, **extra), "stream": True}
    headers = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
    with httpx2.Client(timeout=10) as http:
        response = http.post(f"{env.sim.base_url}/v1/messages", json=body, headers=headers)
    return response.content


def truth(body: bytes) -> list[tuple[str | None, str]]:
    """The events in `body`, by the course's parser (itself checked against the SDK's decoder)."""
    from course_utils.sse import parse_sse

    return [(e.event, e.data) for e in parse_sse([body], strict_eof=True)]


def parse_in_chunks(env: Env, chunks: list[bytes]) -> list[tuple[Any, Any]]:
    """Feed the learner's EventParser these chunks in order; return every event it gave back, as tuples."""
    parser = env.call(env.learner())
    events: list[tuple[Any, Any]] = []
    for chunk in chunks:
        got = env.call(parser.feed, chunk)
        expect(isinstance(got, list), f"feed() must return a list of events, got {short(got)}")
        for event in got:
            expect(
                isinstance(event, tuple) and len(event) == 2,
                f"each event must be an (event, data) tuple, got {short(event)}",
            )
            events.append(event)
    return events


def expect_events(got: list[tuple[Any, Any]], want: list[tuple[str | None, str]], how: str) -> None:
    """Compare event lists and say where they first differ."""
    for i, (g, w) in enumerate(zip(got, want, strict=False)):  # lengths may differ
        unnamed = w[0] is None and isinstance(g, tuple) and g[0] in ("", "message") and g[1] == w[1]
        expect(g == w or unnamed, f"{how}: event {i + 1} should be {short(w)}, got {short(g)}")
    expect(len(got) == len(want), f"{how}: expected {len(want)} events, got {len(got)}")


# -- 02.1 EventParser --------------------------------------------------------------------------------------------------


@task_check("02.1", "parses a whole stream fed in one chunk")
def parses_whole(env: Env) -> None:
    body = raw_body(env, ABOUT, 40)
    expect_events(parse_in_chunks(env, [body]), truth(body), "the whole body in one feed()")


@task_check("02.1", "gives the same events whatever the chunk boundaries", timeout=30)
def any_boundary(env: Env) -> None:
    body = raw_body(env, "Hi", 8)
    want = truth(body)
    for cut in range(1, len(body)):
        expect_events(parse_in_chunks(env, [body[:cut], body[cut:]]), want, f"the body split at byte {cut}")
    expect_events(parse_in_chunks(env, [body[i : i + 1] for i in range(len(body))]), want, "one byte at a time")


@task_check("02.1", "keeps a character whose bytes are split across chunks")
def split_character(env: Env) -> None:
    from course_utils.sse import encode_event

    texts = ["Café ☕", " au lait 🌊", " — très bien."]
    body = b"".join(
        encode_event(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}},
        )
        for t in texts
    )
    want = truth(body)
    for cut in range(1, len(body)):
        expect_events(parse_in_chunks(env, [body[:cut], body[cut:]]), want, f"the body split at byte {cut}")


# -- 02.2 accumulate ---------------------------------------------------------------------------------------------------


def decoded(body: bytes) -> list[dict[str, Any]]:
    """The JSON of every named event, as the SDK would see it."""
    return [json.loads(data) for event, data in truth(body) if event and data]


def simple_message(message: Any) -> dict[str, Any]:
    """The fields accumulate() must rebuild, from the SDK's final message."""
    blocks = []
    for block in message.content:
        if block.type == "text":
            blocks.append({"type": "text", "text": block.text})
        elif block.type == "tool_use":
            blocks.append({"type": "tool_use", "id": block.id, "name": block.name, "input": block.input})
    return {
        "content": blocks,
        "stop_reason": message.stop_reason,
        "usage": {"input_tokens": message.usage.input_tokens, "output_tokens": message.usage.output_tokens},
    }


def simplify(got: Any) -> dict[str, Any]:
    """The same fields from the learner's dict (extra keys are fine)."""
    expect(isinstance(got, dict), f"accumulate must return a dict, got {short(got)}")
    for key in ("content", "stop_reason", "usage"):
        expect(key in got, f"the message has no {key!r} key (it has {short(sorted(got))})")
    expect(isinstance(got["content"], list), f"'content' must be a list of blocks, got {short(got['content'])}")
    blocks = []
    for block in got["content"]:
        expect(
            isinstance(block, dict) and "type" in block, f"each block must be a dict with a 'type', got {short(block)}"
        )
        keys = ("type", "text") if block["type"] == "text" else ("type", "id", "name", "input")
        blocks.append({k: block.get(k) for k in keys})
    usage = got["usage"] if isinstance(got["usage"], dict) else {}
    return {
        "content": blocks,
        "stop_reason": got["stop_reason"],
        "usage": {"input_tokens": usage.get("input_tokens"), "output_tokens": usage.get("output_tokens")},
    }


def accumulate_matches(env: Env, prompt: str, max_tokens: int, **extra: Any) -> None:
    body = raw_body(env, prompt, max_tokens, **extra)
    got = simplify(env.call(env.learner(), iter(decoded(body))))
    with env.client().messages.stream(**env.request(prompt, max_tokens, **extra)) as stream:
        want = simple_message(stream.get_final_message())
    for key in ("content", "stop_reason", "usage"):
        expect_equal(got[key], want[key], f"{key!r}")


@task_check("02.2", "a text reply: text, stop reason and usage")
def accumulates_text(env: Env) -> None:
    accumulate_matches(env, ABOUT, 60)


@task_check("02.2", "a tool call: its input JSON put together and parsed")
def accumulates_tool(env: Env) -> None:
    accumulate_matches(env, "What's the weather in Paris?", 200, tools=[WEATHER_TOOL])


# -- 02.3 stream_events ------------------------------------------------------------------------------------------------


def wire_events(env: Env, prompt: str, max_tokens: int) -> list[Any]:
    got = env.call(env.learner(), env.sim.base_url, API_KEY, env.model, prompt, max_tokens)
    expect(
        hasattr(got, "__iter__") and not isinstance(got, (str, bytes, dict)),
        f"stream_events must return an iterator of events, got {short(got)}",
    )
    return got


@task_check("02.3", "yields the JSON of every event, in order", timeout=20)
def every_event(env: Env) -> None:
    events = env.run("stream_events(...)", lambda: list(wire_events(env, ABOUT, 40)))
    want = [json.loads(data) for _, data in truth(raw_body(env, ABOUT, 40))]
    expect(
        all(isinstance(e, dict) for e in events),
        f"each event must be a dict (the decoded data), got {short(events[:3])}",
    )
    kinds, want_kinds = [e.get("type") for e in events], [e["type"] for e in want]
    expect_equal(kinds, want_kinds, "the events' types")
    expect_equal(events, want, "the events")


@task_check("02.3", "yields each event as it arrives, not at the end", timeout=20)
def yields_early(env: Env) -> None:
    env.sim.speed = 2
    start = time.perf_counter()
    stamps: list[float] = []

    def consume() -> None:
        for _ in wire_events(env, ABOUT, 60):
            stamps.append(time.perf_counter() - start)

    env.run("stream_events(...)", consume)
    expect(stamps, "stream_events yielded nothing")
    total = stamps[-1]
    expect(
        stamps[0] < 0.6 * total,
        f"the first event came {stamps[0]:.2f} s after the request, close to the end "
        f"({total:.2f} s): yield each event as soon as it is parsed",
    )
