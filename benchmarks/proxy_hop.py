"""Proxy hop: what going through `/api/chat` costs compared with calling the SDK directly, one request at a time.

Five relays are served side by side by one app process and measured in the same run, alternating request by request:

    sdk-sse       the app's first relay: the SDK's `MessageStream.text_stream`, framed by FastAPI's `ServerSentEvent`
    sdk-bytes     the same SDK stream, framed by hand into bytes for a plain `StreamingResponse`
    raw-sse       the upstream's own SSE bytes (the app's dependency: the SDK's request, sent by `relay.Upstream`),
                  parsed by `course_utils.sse`, FastAPI framing
    raw-bytes     the upstream's bytes, parsed the same way, framed by hand (the shipped relay without keep-alive)
    raw-bytes-ka  raw-bytes plus a `: ping` comment when the upstream goes quiet: the app as shipped
                  (`course_utils/chat_app/relay.py`), at `/api/chat`; `SHIPPED` names it

Every relay is first checked to send the same events as the direct SDK call (text deltas, `done` with the same stop
reason and usage, the same `error` types and HTTP statuses under faults) and whether it keeps a stalled stream alive
with `: ping` comments; a relay that sends wrong events is reported, not timed. The simulator runs with pacing off
(speed 0), so every millisecond measured is the software's, on loopback. All five share the app's SDK client, so all
run over its HTTP/1.1 transport (`course_utils/chat_app/transport.py`): the rows differ in the relay alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Annotated, Any

import anthropic
import httpx
import httpx2
from anthropic._response import AsyncAPIResponse
from anthropic.lib.streaming import AsyncMessageStream
from fastapi import Depends, FastAPI, Request
from fastapi.responses import StreamingResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent, format_sse_event

from course_utils.chat_app.errors import ChatError, from_upstream, stream_error
from course_utils.chat_app.relay import EventStreamResponse, UpstreamResponse, relay
from course_utils.chat_app.schema import ChatRequest
from course_utils.sse import SSEParser

from . import harness
from .harness import MODEL, ms, percentile

Event = tuple[str, dict[str, Any]]  # ("text" | "done" | "error", data)
RELAYS = {
    "sdk-sse": "/bench/sdk-sse",
    "sdk-bytes": "/bench/sdk-bytes",
    "raw-sse": "/bench/raw-sse",
    "raw-bytes": "/bench/raw-bytes",
    "raw-bytes-ka": "/api/chat",
}
SHIPPED = "raw-bytes-ka"  # the relay `/api/chat` runs (course_utils/chat_app/relay.py)
REFERENCE = "sdk-sse"  # under faults every relay must do what the SDK's own stream does
PING_ENV = "BENCH_PING_INTERVAL"  # seconds of upstream silence before a keep-alive comment (the app's default: 15)
PING_CHECK = 0.4  # the keep-alive interval the apps run with here, so the stall check takes a second, not a minute
SHORT_TOKENS, LONG_TOKENS = 1, 600  # a one-delta reply (time to first token) and a ~300-delta one (per-token cost)


# -- the relays under test -------------------------------------------------------------------------------------------


async def open_sdk_upstream(chat: ChatRequest, request: Request) -> AsyncIterator[AsyncMessageStream]:
    """The first relay's yield dependency: the SDK's `MessageStream`, open once the upstream has answered 200."""
    try:
        params = chat.to_params(request.app.state.settings)
    except ValueError as exc:
        raise ChatError(422, "invalid_request_error", str(exc)) from None
    client: anthropic.AsyncAnthropic = request.app.state.client
    async with AsyncExitStack() as stack:
        try:
            stream = await stack.enter_async_context(client.messages.stream(**params))
        except anthropic.APIError as exc:
            raise from_upstream(exc) from None
        yield stream


SdkStream = Annotated[AsyncMessageStream, Depends(open_sdk_upstream)]


async def sdk_events(stream: AsyncMessageStream) -> AsyncIterator[Event]:
    """The first relay's events (the SDK's text stream and final message), as plain tuples."""
    try:
        async for text in stream.text_stream:
            yield "text", {"text": text}
        message = await stream.get_final_message()
    except (anthropic.APIError, httpx2.TransportError) as exc:
        yield "error", stream_error(exc)
        return
    usage = {"input_tokens": message.usage.input_tokens, "output_tokens": message.usage.output_tokens}
    yield "done", {"stop_reason": message.stop_reason, "usage": usage}


RawUpstream = UpstreamResponse  # the shipped dependency: the upstream's bytes, not SDK events


async def raw_events(response: AsyncAPIResponse[Any]) -> AsyncIterator[Event]:
    """The shipped relay's decoding (`course_utils.chat_app.relay.relay`) as event tuples, for FastAPI's framing."""
    parser = SSEParser(strict_eof=True)
    usage = {"input_tokens": 0, "output_tokens": 0}
    stop_reason = None
    try:
        async for chunk in response.iter_bytes():
            for event in parser.feed(chunk):
                if event.event == "content_block_delta":
                    delta = json.loads(event.data)["delta"]
                    if delta.get("type") == "text_delta":
                        yield "text", {"text": delta["text"]}
                elif event.event == "message_start":
                    usage["input_tokens"] = json.loads(event.data)["message"]["usage"]["input_tokens"]
                elif event.event == "message_delta":
                    data = json.loads(event.data)
                    stop_reason = data["delta"]["stop_reason"]
                    usage.update({k: v for k, v in data.get("usage", {}).items() if k in usage and v is not None})
                elif event.event == "message_stop":
                    yield "done", {"stop_reason": stop_reason, "usage": usage}
                    return
                elif event.event == "error":
                    body = json.loads(event.data)
                    error = anthropic.APIStatusError(str(body), response=response.http_response, body=body)
                    yield "error", stream_error(error)
                    return
        raise httpx2.RemoteProtocolError("the upstream stream ended before message_stop")
    except (anthropic.APIError, httpx2.TransportError) as exc:
        yield "error", stream_error(exc)


async def as_sse(events: AsyncIterator[Event]) -> AsyncIterator[ServerSentEvent]:
    """Events for FastAPI's SSE framing."""
    async for name, data in events:
        yield ServerSentEvent(event=name, data=data)


async def as_bytes(events: AsyncIterator[Event]) -> AsyncIterator[bytes]:
    """Events framed by hand, byte for byte what FastAPI sends for them."""
    async for name, data in events:
        yield format_sse_event(data_str=json.dumps(data), event=name)


def add_relays(app: FastAPI) -> FastAPI:
    """Add the alternative relays to a chat app (the shipped one stays at `/api/chat`)."""

    @app.post(RELAYS["sdk-sse"], response_class=EventSourceResponse)
    async def sdk_sse(stream: SdkStream) -> AsyncIterator[ServerSentEvent]:
        async for event in as_sse(sdk_events(stream)):
            yield event

    @app.post(RELAYS["sdk-bytes"])
    async def sdk_bytes(stream: SdkStream) -> StreamingResponse:
        return EventStreamResponse(as_bytes(sdk_events(stream)), ping_interval=None)

    @app.post(RELAYS["raw-sse"], response_class=EventSourceResponse)
    async def raw_sse(response: RawUpstream) -> AsyncIterator[ServerSentEvent]:
        async for event in as_sse(raw_events(response)):
            yield event

    @app.post(RELAYS["raw-bytes"])
    async def raw_bytes(response: RawUpstream) -> StreamingResponse:
        return EventStreamResponse(relay(response), ping_interval=None)

    return app


# -- measuring -------------------------------------------------------------------------------------------------------


def body(topic: str, max_tokens: int) -> dict[str, Any]:
    """A chat request whose reply is longer than `max_tokens`, so it is exactly `max_tokens` long."""
    return {"messages": [{"role": "user", "content": f"Write 500 words about {topic}"}], "max_tokens": max_tokens}


async def direct(client: anthropic.AsyncAnthropic, chat: dict[str, Any]) -> harness.ChatResult:
    """The same chat through the SDK straight to the upstream, timed like `harness.LoadClient.chat`."""
    result = harness.ChatResult(started=time.perf_counter(), status=200)
    async with client.messages.stream(model=MODEL, **chat) as stream:
        async for text in stream.text_stream:
            result.times.append(time.perf_counter())
            result.texts.append(text)
        message = await stream.get_final_message()
    usage = {"input_tokens": message.usage.input_tokens, "output_tokens": message.usage.output_tokens}
    result.terminal, result.terminal_data = "done", {"stop_reason": message.stop_reason, "usage": usage}
    return result


def outcome(result: harness.ChatResult) -> Any:
    """What must be equal between relays: the events, or the error type, or the HTTP status."""
    if result.status != 200:
        return ("status", result.status)
    if result.terminal == "error":
        return ("error", (result.terminal_data or {}).get("type"), len(result.texts))
    return (result.terminal, result.texts, result.terminal_data, result.garbled, result.failure)


async def check_relays(
    sim: harness.Service, client: anthropic.AsyncAnthropic, http: harness.LoadClient
) -> tuple[dict[str, list[str]], dict[str, bool]]:
    """Per relay: where its events differ from the direct call (under faults, from the SDK stream's); and whether
    it keeps a stalled stream alive with comments."""
    problems: dict[str, list[str]] = {name: [] for name in RELAYS}
    for topic, tokens in (("rivers", 40), ("owls", LONG_TOKENS), ("unicode: é, 日本, 🦉", 30)):
        chat = body(topic, tokens)
        expected = outcome(await direct(client, chat))
        for name, path in RELAYS.items():
            if outcome(await http.chat(path, chat)) != expected:
                problems[name].append(f"reply to {topic!r} differs from the direct call")
    # A stall shorter than the read timeout: the stream resumes; meanwhile the browser should hear from the server.
    keepalive = {}
    stalled = outcome(await direct(client, body("stalls", 40)))
    for name, path in RELAYS.items():
        inject(sim, {"fault": "stall_midstream", "after": 5, "stall_seconds": 3 * PING_CHECK})
        result = await http.chat(path, body("stalls", 40))
        if outcome(result) != stalled:
            problems[name].append("reply after a stall differs from the direct call")
        keepalive[name] = result.comments > 0
    for kind, count in (("error_midstream", 1), ("disconnect_midstream", 1), ("overloaded", 3), ("rate_limit", 3)):
        seen = {}
        for name, path in RELAYS.items():
            inject(sim, {"fault": kind, "count": count, "after": 5, "retry_after": 0.01})
            seen[name] = outcome(await http.chat(path, body("faults", 40)))
        for name in RELAYS:
            if seen[name] != seen[REFERENCE]:
                problems[name].append(f"{kind}: {seen[name]!r} where the SDK's stream gives {seen[REFERENCE]!r}")
    return problems, keepalive


def inject(sim: harness.Service, fault: dict[str, Any]) -> None:
    """Queue a fault in the simulator's process."""
    httpx.post(sim.url + "/_sim/faults", json=fault, timeout=5).raise_for_status()


async def measure(rounds: int) -> dict[str, Any]:
    """Start a simulator (speed 0) and the app with every relay; check them, then time them side by side."""
    env = {PING_ENV: f"{PING_CHECK:g}"}
    with harness.start_simulator(0) as sim, harness.start_app("async", sim.url, env=env) as app:
        client = anthropic.AsyncAnthropic(base_url=sim.url, api_key="offline-benchmark", max_retries=0)
        async with client, harness.LoadClient(app.url) as http:
            problems, keepalive = await check_relays(sim, client, http)
            paths = {"direct": None, **{name: RELAYS[name] for name in RELAYS if not problems[name]}}
            ttft: dict[str, list[float]] = {name: [] for name in paths}
            total: dict[str, list[float]] = {name: [] for name in paths}
            cpu = {name: {"short": 0.0, "long": 0.0, "short_events": 0, "long_events": 0} for name in paths}
            events_per_long_reply = 0
            for i in range(rounds):
                order = list(paths)[i % len(paths) :] + list(paths)[: i % len(paths)]  # no relay always goes first
                for name in order:
                    for size, tokens in (("short", SHORT_TOKENS), ("long", LONG_TOKENS)):
                        chat, path = body(f"topic {i}", tokens), paths[name]
                        cpu0 = harness.cpu_seconds(app.pid)
                        result = await direct(client, chat) if path is None else await http.chat(path, chat)
                        cpu[name][size] += harness.cpu_seconds(app.pid) - cpu0
                        cpu[name][f"{size}_events"] += len(result.texts)
                        if result.terminal != "done" or not result.times:
                            problems.setdefault(name, []).append(f"round {i}: {outcome(result)!r}")
                        elif size == "short":
                            ttft[name].append(result.ttft or 0.0)
                        else:
                            total[name].append(result.times[-1] - result.started)
                            events_per_long_reply = len(result.texts)
    report: dict[str, Any] = {
        "rounds": rounds,
        "long_reply_text_events": events_per_long_reply,
        "keepalive_interval_s": PING_CHECK,
        "paths": {},
    }
    base_ttft, base_total = percentile(ttft["direct"], 50) or 0.0, percentile(total["direct"], 50) or 0.0
    for name in paths:
        ttft50, total50 = percentile(ttft[name], 50) or 0.0, percentile(total[name], 50) or 0.0
        row: dict[str, Any] = {
            "ttft_ms_p50": ms(ttft50),
            "ttft_ms_p99": ms(percentile(ttft[name], 99)),
            "ttft_ratio_vs_direct": round(ttft50 / base_ttft, 2) if base_ttft else None,
            "long_reply_ms_p50": ms(total50),
            "per_token_wall_ms": ms(total50 / max(1, events_per_long_reply)),
            "long_reply_ratio_vs_direct": round(total50 / base_total, 2) if base_total else None,
        }
        if name != "direct":
            used = cpu[name]
            # Short replies cost the request; the difference per extra event is the relay's cost per token.
            per_token = (used["long"] - used["short"]) / max(1, used["long_events"] - used["short_events"])
            row.update(
                {
                    "app_cpu_ms_per_request": ms(used["short"] / rounds),
                    "app_cpu_ms_per_token": ms(per_token),
                    "streams_per_core_at_30_events_s": round(1 / (per_token * 30)) if per_token > 0 else None,
                    "keepalive": keepalive[name],
                }
            )
        report["paths"][name] = row
    report["problems"] = {name: found for name, found in problems.items() if found}
    correct = [name for name in RELAYS if name in paths and keepalive[name] and name not in report["problems"]]
    report["fastest_correct_relay"] = min(
        correct, key=lambda n: report["paths"][n]["app_cpu_ms_per_token"], default=None
    )
    return report


def run(rounds: int = 30) -> dict[str, Any]:
    """The proxy-hop benchmark: latency and relay cost of each correct relay next to the direct SDK call."""
    return harness.run_async(measure(rounds))


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
