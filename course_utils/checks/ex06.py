"""Exercise 06, a FastAPI streaming endpoint: SSE framing, a relay with a terminal event, failures and disconnects."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .base import Task, expect, expect_equal, short, task_check
from .env import Env, as_messages

_APP_HELPERS = ("course_utils.chat_app", "course_utils.sse")

TASKS = (
    Task(
        "06.1",
        "sse_event",
        "Frame one server-sent event",
        forbid=("course_utils.sse", "course_utils.chat_app", "fastapi.sse", "sse_starlette"),
    ),
    Task("06.2", "create_app", "A streaming chat endpoint", forbid=_APP_HELPERS),
    Task("06.3", "create_app", "Failures and disconnects", forbid=_APP_HELPERS),
)

HELLO = [{"role": "user", "content": "Tell me briefly about the ocean."}]


def parse(text: str | bytes) -> list[tuple[str | None, str]]:
    """Events in a body, by the course's parser (checked against the SDK's decoder)."""
    from course_utils.sse import parse_sse

    data = text.encode() if isinstance(text, str) else text
    return [(e.event, e.data) for e in parse_sse([data], strict_eof=True)]


# -- 06.1 sse_event ----------------------------------------------------------------------------------------------------


def framed(env: Env, event: str, data: Any) -> str:
    got = env.call(env.learner(), event, data)
    expect(isinstance(got, str), f"sse_event must return a str, got {short(got)}")
    expect(got.endswith("\n\n"), f'an event ends with a blank line ("\\n\\n"), got {short(got[-20:])}')
    return got


@task_check("06.1", "an event whose data is JSON")
def frames_json(env: Env) -> None:
    data = {"text": "Hello", "n": 2}
    events = parse(framed(env, "text", data))
    expect(len(events) == 1 and events[0][0] == "text", f"expected one `text` event, parsed {short(events)}")
    expect_equal(json.loads(events[0][1]), data, "the event's data, decoded")


@task_check("06.1", "text with line breaks becomes several data lines")
def frames_lines(env: Env) -> None:
    text = "line one\nline two\n\nline four"
    events = parse(framed(env, "note", text))
    expect_equal(events, [("note", text)], "the parsed event")


# -- 06.2 create_app ---------------------------------------------------------------------------------------------------


@contextmanager
def app_url(env: Env) -> Iterator[str]:
    """The learner's app, built with a client on the check's simulator (SDK retries off), served on a free port."""
    app = env.call(env.learner("create_app"), env.async_client(), env.model)
    expect(callable(app), f"create_app must return a FastAPI app, got {short(app)}")
    with env.serve(app) as url:
        yield url


def post_chat(
    url: str,
    messages: list[dict[str, Any]],
    max_tokens: int = 300,
    *,
    stop_after: int | None = None,
) -> tuple[int, dict[str, str], list[tuple[str | None, Any]], list[float]]:
    """POST /api/chat; return the status, headers, the events (data decoded when JSON) and when each arrived."""
    import httpx2

    from course_utils.sse import SSEParser

    events: list[tuple[str | None, Any]] = []
    stamps: list[float] = []
    start = time.perf_counter()
    body = {"messages": messages, "max_tokens": max_tokens}
    with httpx2.Client(timeout=20) as http, http.stream("POST", f"{url}/api/chat", json=body) as response:
        status, headers = response.status_code, dict(response.headers)
        parser = SSEParser(strict_eof=True)
        try:
            for chunk in response.iter_bytes():
                for event in parser.feed(chunk):
                    try:
                        data: Any = json.loads(event.data)
                    except ValueError:
                        data = event.data
                    events.append((event.event, data))
                    stamps.append(time.perf_counter() - start)
                if stop_after is not None and sum(e == "text" for e, _ in events) >= stop_after:
                    break  # leaving the block closes the connection: the client goes away
        except httpx2.TransportError:
            events.append(("<connection broken>", None))
    return status, headers, events, stamps


def reply(env: Env, messages: list[dict[str, Any]], max_tokens: int = 300) -> Any:
    return env.client().messages.create(model=env.model, max_tokens=max_tokens, messages=as_messages(messages))


def expect_relayed(
    env: Env, events: list[tuple[str | None, Any]], messages: list[dict[str, Any]], max_tokens: int = 300
) -> None:
    """text events that add up to the reply, then exactly one done event with its stop reason and usage."""
    want = reply(env, messages, max_tokens)
    names = [e for e, _ in events]
    expect(
        names and names[-1] == "done" and names.count("done") == 1,
        f"the stream should end with exactly one `done` event; the events were {short(names)}",
    )
    expect(set(names[:-1]) <= {"text"} and len(names) > 2, f"before `done`, only `text` events; got {short(names)}")
    texts = [d.get("text") if isinstance(d, dict) else None for e, d in events if e == "text"]
    expect(
        all(isinstance(t, str) for t in texts),
        f'each `text` event\'s data is {{"text": ...}}; got {short([d for e, d in events if e == "text"][:2])}',
    )
    expect_equal("".join(str(t) for t in texts), want.content[0].text, "the text events' texts, joined")
    done = events[-1][1]
    expect(isinstance(done, dict), f"the `done` event's data should be a JSON object, got {short(done)}")
    expect_equal(done.get("stop_reason"), want.stop_reason, "the `done` event's stop_reason")
    usage = done.get("usage") if isinstance(done.get("usage"), dict) else {}
    expect_equal(
        (usage.get("input_tokens"), usage.get("output_tokens")),
        (want.usage.input_tokens, want.usage.output_tokens),
        "the `done` event's usage (input, output)",
    )


@task_check("06.2", "streams text events, then one done event with the stop reason and usage", timeout=20)
def relays_a_reply(env: Env) -> None:
    with app_url(env) as url:
        status, headers, events, _ = post_chat(url, HELLO)
    expect_equal(status, 200, "the HTTP status")
    expect(
        headers.get("content-type", "").startswith("text/event-stream"),
        f"the content type should be text/event-stream, got {headers.get('content-type')!r}",
    )
    expect_relayed(env, events, HELLO)


@task_check("06.2", "sends the whole conversation upstream", timeout=20)
def relays_history(env: Env) -> None:
    history = [
        {"role": "user", "content": "Hi, my name is Ada."},
        {"role": "assistant", "content": "Hello, Ada! Nice to meet you."},
        {"role": "user", "content": "What's my name?"},
    ]
    with app_url(env) as url:
        _, _, events, _ = post_chat(url, history)
    expect_relayed(env, events, history)


# -- 06.3 failures and disconnects -------------------------------------------------------------------------------------


@task_check("06.3", "an error after the first byte ends the stream with one error event", timeout=20)
def error_event(env: Env) -> None:
    env.sim.inject("error_midstream", after=5)
    with app_url(env) as url:
        status, _, events, _ = post_chat(url, HELLO)
    names = [e for e, _ in events]
    expect_equal(status, 200, "the HTTP status (the stream had started)")
    expect(
        names and names[-1] == "error" and "done" not in names,
        f"the stream should end with an `error` event and no `done`; the events were {short(names)}",
    )
    data = events[-1][1]
    expect(
        isinstance(data, dict) and isinstance(data.get("type"), str) and isinstance(data.get("message"), str),
        f'the `error` event\'s data should be {{"type": ..., "message": ...}}, got {short(data)}',
    )


@task_check("06.3", "an error before the stream is an HTTP status, not a 200", timeout=20)
def status_before_stream(env: Env) -> None:
    env.sim.inject("rate_limit", retry_after=0.01)
    with app_url(env) as url:
        status, _, events, _ = post_chat(url, HELLO)
    expect(
        status == 429,
        f"an upstream 429 before the stream should answer 429, got {status} with events "
        f"{short([e for e, _ in events])} (open the upstream before the response starts: a "
        "yield dependency)",
    )


@task_check("06.3", "a client that leaves closes the upstream stream", timeout=20)
def disconnect_closes_upstream(env: Env) -> None:
    env.sim.speed = 2
    with app_url(env) as url:
        post_chat(url, [{"role": "user", "content": "Write 500 words about the ocean."}], 1000, stop_after=2)
        closed = env.sim.wait_idle(3)
        stats = env.sim.stats()
    expect(
        closed and stats["streams_abandoned"] == 1 and stats["streams_completed"] == 0,
        "the client left after two events but the upstream stream kept running: let the cancellation reach "
        "`async with client.messages.stream(...)`",
    )
