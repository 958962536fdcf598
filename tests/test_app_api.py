"""The chat endpoint over real HTTP: uvicorn on loopback, the real SDK upstream, the simulator behind it."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import pytest
from anthropic._models import FinalRequestOptions

from course_utils.chat_app import (
    AppServer,
    ChatError,
    ChatSettings,
    create_app,
    server_errors,
    stream_chat,
    upstream_client,
)
from course_utils.chat_app.relay import Upstream, UpstreamEvents, _Streamed
from course_utils.chat_app.schema import MAX_BODY_BYTES, MAX_CONTENT_CHARS, MAX_TOKENS_LIMIT, MAX_TURNS
from course_utils.chat_app.transport import UpstreamTransport
from course_utils.simulator import Simulator
from course_utils.sse import SSEParser, parse_sse

from conftest import MODEL

ROOT = Path(__file__).resolve().parents[1]
KEY = "test-key-never-sent-to-the-browser"
HELLO = [{"role": "user", "content": "Hello there"}]
LONG = [{"role": "user", "content": "Write 4000 words about the ocean"}]


@pytest.fixture(scope="module")
def app(sim: Simulator) -> Iterator[AppServer]:
    """The app as deployed: its own client (made in the lifespan), default retries, pointed at the simulator."""
    settings = ChatSettings(base_url=sim.base_url, api_key=KEY, read_timeout=10.0)
    with AppServer(create_app(settings)) as server:
        yield server


def post(app: AppServer, body: object, **kwargs: object) -> httpx.Response:
    """One POST to /api/chat, body read whole."""
    return httpx.post(app.url + "api/chat", json=body, timeout=10, **kwargs)  # type: ignore[arg-type]


def events(response: httpx.Response) -> list[tuple[str | None, dict]]:
    """The (event, data) pairs of a whole event-stream body."""
    return [(e.event, e.json()) for e in parse_sse([response.content], strict_eof=True)]


def text_of(evs: list[tuple[str | None, dict]]) -> str:
    """The concatenated `text` events."""
    return "".join(data["text"] for name, data in evs if name == "text")


def direct_text(client: anthropic.Anthropic, **params: object) -> str:
    """The same request straight to the simulator through the SDK: the reference answer."""
    message = client.messages.create(model=MODEL, **params)  # type: ignore[call-overload]
    return "".join(block.text for block in message.content if block.type == "text")


# -- the happy path ----------------------------------------------------------------------------------------------------


def test_streams_text_events_then_one_done(app: AppServer, client: anthropic.Anthropic) -> None:
    response = post(app, {"messages": HELLO, "max_tokens": 60})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    evs = events(response)
    names = [name for name, _ in evs]
    assert names[-1] == "done" and set(names[:-1]) == {"text"} and len(names) > 3
    assert text_of(evs) == direct_text(client, max_tokens=60, messages=HELLO)
    done = evs[-1][1]
    assert done["stop_reason"] in {"end_turn", "max_tokens"}
    assert done["usage"]["output_tokens"] > 0 and done["usage"]["input_tokens"] > 0


def test_browser_never_sees_key_or_upstream_headers(app: AppServer, fresh_sim: Simulator) -> None:
    response = post(app, {"messages": HELLO, "max_tokens": 20})
    assert response.status_code == 200
    leaked = [h for h in response.headers if h.startswith(("anthropic-", "request-id", "x-should-retry"))]
    assert leaked == []
    assert KEY not in response.text and KEY not in str(response.headers)
    fresh_sim.inject("error_midstream", after=3)
    assert KEY not in post(app, {"messages": HELLO}).text


@pytest.mark.parametrize(
    "params",
    [
        {"max_tokens": 5},
        {"max_tokens": 200, "system": "You are a pirate."},
        {"max_tokens": 200, "model": "claude-sonnet-4-6"},
    ],
    ids=["max_tokens", "system", "model"],
)
def test_parameters_reach_the_upstream(
    app: AppServer, fresh_sim: Simulator, client: anthropic.Anthropic, params: dict
) -> None:
    evs = events(post(app, {"messages": HELLO, **params}))
    assert fresh_sim.requests()[0]["model"] == params.get("model", MODEL)
    if "model" not in params:
        assert text_of(evs) == direct_text(client, messages=HELLO, **params)
    if "system" in params:
        assert text_of(evs) != direct_text(client, messages=HELLO, max_tokens=200)
    if params["max_tokens"] == 5:
        assert evs[-1][1]["stop_reason"] == "max_tokens" and evs[-1][1]["usage"]["output_tokens"] == 5


def test_history_reaches_the_upstream(app: AppServer) -> None:
    turns = [{"role": "user", "content": "My name is Ada."}]
    first = text_of(events(post(app, {"messages": turns, "max_tokens": 100})))
    turns += [{"role": "assistant", "content": first}, {"role": "user", "content": "What's my name?"}]
    assert "Ada" in text_of(events(post(app, {"messages": turns, "max_tokens": 100})))
    assert "Ada" not in text_of(events(post(app, {"messages": turns[-1:], "max_tokens": 100})))


def test_many_concurrent_streams_all_finish(app: AppServer, fresh_sim: Simulator) -> None:
    async def one(http: httpx.AsyncClient, n: int) -> str | None:
        body = {"messages": [{"role": "user", "content": f"Tell me fact number {n} about octopuses"}], "max_tokens": 40}
        async with http.stream("POST", app.url + "api/chat", json=body) as response:
            last = None
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    last = line.removeprefix("event: ")
            return last

    async def run() -> list[str | None]:
        async with httpx.AsyncClient(timeout=20) as http:
            return await asyncio.gather(*(one(http, n) for n in range(30)))

    assert asyncio.run(run()) == ["done"] * 30
    assert fresh_sim.wait_idle()  # the app relays `message_stop` before the simulator has counted its stream
    assert fresh_sim.stats()["streams_completed"] == 30


def test_upstream_event_splitter_matches_the_general_parser(fresh_sim: Simulator) -> None:
    # The relay cuts the API's usual `event:` + `data:` framing out of the bytes itself, and hands anything else to
    # lesson 02's parser: at every split point of a real stream and of its unusual variants, the events are the same.
    body = {
        "model": MODEL,
        "max_tokens": 40,
        "stream": True,
        "messages": [{"role": "user", "content": "Write about owls: é, 日本, 🦉"}],
    }
    raw = httpx.post(
        fresh_sim.base_url + "/v1/messages",
        json=body,
        timeout=10,
        headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"},
    ).content
    variants = {
        "lf": raw,
        "crlf": raw.replace(b"\n", b"\r\n"),
        "cr": raw.replace(b"\n", b"\r"),
        "comments": raw.replace(b"\n\n", b"\n\n: ping\n\n", 3),
        "no space": raw.replace(b"data: ", b"data:", 3),
        "two data lines": raw.replace(b'data: {"type":"message_stop"', b'data: {"type":\ndata: "message_stop"'),
        "extra blank lines": raw.replace(b"\n\n", b"\n\n\n", 4),
    }

    def split(chunks: list[bytes]) -> list[tuple[str | None, str]]:
        parser = UpstreamEvents()
        events = [event for chunk in chunks for event in parser.feed(chunk)]
        return [(name, data.decode() if isinstance(data, bytes) else data) for name, data in events]

    for name, stream in variants.items():
        general = SSEParser(strict_eof=True)
        expected = [(event.event, event.data) for event in general.feed(stream)]
        assert len(expected) > 10 and expected[-1][0] == "message_stop", name
        assert split([stream[i : i + 1] for i in range(len(stream))]) == expected, name
        assert [i for i in range(len(stream) + 1) if split([stream[:i], stream[i:]]) != expected] == [], name


# -- validation: bad input never reaches the upstream ------------------------------------------------------------------

USER = {"role": "user", "content": "hi"}
INVALID = {
    "no messages": ({"messages": []}, 422, "messages"),
    "missing messages": ({"system": "x"}, 422, "messages: Field required"),
    "messages not a list": ({"messages": "hi"}, 422, "messages"),
    "bad role": ({"messages": [{"role": "system", "content": "hi"}]}, 422, "messages.0.role"),
    "empty content": ({"messages": [{"role": "user", "content": ""}]}, 422, "messages.0.content"),
    "blank content": ({"messages": [{"role": "user", "content": " \n "}]}, 422, "must not be blank"),
    "content not text": ({"messages": [{"role": "user", "content": 42}]}, 422, "messages.0.content"),
    "unknown turn field": ({"messages": [{**USER, "name": "x"}]}, 422, "messages.0.name"),
    "last turn from assistant": (
        {"messages": [USER, {"role": "assistant", "content": "yo"}]},
        422,
        "last message must come from the user",
    ),
    "content too long": (
        {"messages": [{"role": "user", "content": "a" * (MAX_CONTENT_CHARS + 1)}]},
        422,
        "messages.0.content",
    ),
    "too many turns": ({"messages": [USER] * (MAX_TURNS + 1)}, 422, "messages"),
    "conversation too long": (
        {"messages": [{"role": "user", "content": "a" * MAX_CONTENT_CHARS}] * 6},
        422,
        "conversation is",
    ),
    "system too long": ({"messages": [USER], "system": "s" * 4001}, 422, "system"),
    "max_tokens zero": ({"messages": [USER], "max_tokens": 0}, 422, "max_tokens"),
    "max_tokens too big": ({"messages": [USER], "max_tokens": MAX_TOKENS_LIMIT + 1}, 422, "max_tokens"),
    "max_tokens as text": ({"messages": [USER], "max_tokens": "100"}, 422, "max_tokens"),
    "unknown model": ({"messages": [USER], "model": "gpt-4o"}, 422, "'gpt-4o' is not available here"),
    "retired model": ({"messages": [USER], "model": "claude-3-5-sonnet-20241022"}, 422, "model"),
    "unknown field": ({"messages": [USER], "temperature": 2}, 422, "temperature: Extra inputs"),
    "body not an object": ([USER], 422, "Input should be a valid dictionary"),
}


@pytest.mark.parametrize("body,status,words", INVALID.values(), ids=INVALID.keys())
def test_invalid_input_is_a_4xx_naming_the_problem(
    app: AppServer, fresh_sim: Simulator, body: object, status: int, words: str
) -> None:
    response = post(app, body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and words in error["message"]
    assert fresh_sim.stats()["requests"] == 0


@pytest.mark.parametrize(
    "content,headers,status,words",
    [
        (b'{"messages": [', {"content-type": "application/json"}, 400, "not valid JSON"),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', {"content-type": "text/plain"}, 415, "Content-Type"),
        (b"x" * (MAX_BODY_BYTES + 1), {"content-type": "application/json"}, 413, "larger than the limit"),
        (iter([b"x" * 65536] * 5), {"content-type": "application/json"}, 413, "larger than the limit"),  # chunked
    ],
    ids=["not json", "not declared json", "body too large", "chunked body too large"],
)
def test_malformed_bodies_are_refused(
    app: AppServer, fresh_sim: Simulator, content: object, headers: dict, status: int, words: str
) -> None:
    response = httpx.post(app.url + "api/chat", content=content, headers=headers, timeout=10)  # type: ignore[arg-type]
    assert response.status_code == status
    assert words in response.json()["error"]["message"]
    assert fresh_sim.stats()["requests"] == 0


def test_many_problems_are_named_in_a_short_message(app: AppServer, fresh_sim: Simulator) -> None:
    response = post(app, {"messages": [{"role": "user", "content": " "}] * 100})
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert message.startswith("messages.0.content: content must not be blank;")
    assert message.count("must not be blank") == 5 and message.endswith("and 95 more problems")
    assert len(message) < 400


def test_openapi_documents_the_stream_and_every_error(app: AppServer) -> None:
    document = httpx.get(app.url + "api/openapi.json").json()
    responses = document["paths"]["/api/chat"]["post"]["responses"]
    assert sorted(responses) == ["200", "400", "413", "415", "422", "429", "502", "503", "504"]
    stream = responses["200"]["content"]
    assert list(stream) == ["text/event-stream"]  # declared by hand: a StreamingResponse declares nothing
    assert parse_sse([stream["text/event-stream"]["example"].encode()])
    for status in ("400", "415"):
        assert responses[status]["content"]["application/json"]["example"]["error"]["type"] == "invalid_request_error"


# -- upstream failures -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault,status,error_type",
    [
        ("rate_limit", 429, "rate_limit_error"),
        ("overloaded", 503, "overloaded_error"),
        ("api_error", 502, "api_error"),
    ],
)
def test_upstream_error_before_the_stream_is_a_real_status(
    app: AppServer, fresh_sim: Simulator, fault: str, status: int, error_type: str
) -> None:
    fresh_sim.inject(fault, count=3, retry_after=0.01)  # more than the SDK's two retries
    response = post(app, {"messages": HELLO})
    assert response.status_code == status
    assert response.json()["error"]["type"] == error_type
    assert response.headers["retry-after"] == "0.01"  # when to come back travels; nothing else from upstream does
    assert [r["retry_count"] for r in fresh_sim.requests()] == [0, 1, 2]


def test_upstream_error_absorbed_by_a_retry_is_invisible(app: AppServer, fresh_sim: Simulator) -> None:
    fresh_sim.inject("overloaded", count=2, retry_after=0.01)
    response = post(app, {"messages": HELLO, "max_tokens": 20})
    assert response.status_code == 200 and events(response)[-1][0] == "done"
    assert fresh_sim.stats()["requests"] == 3


def test_midstream_error_is_an_error_event_after_the_text(app: AppServer, fresh_sim: Simulator) -> None:
    full = text_of(events(post(app, {"messages": LONG, "max_tokens": 100})))
    fresh_sim.inject("error_midstream", after=10)
    response = post(app, {"messages": LONG, "max_tokens": 100})
    assert response.status_code == 200
    evs = events(response)
    assert [name for name, _ in evs].count("error") == 1 and evs[-1][0] == "error"
    assert "done" not in [name for name, _ in evs]
    partial = text_of(evs)
    assert partial and full.startswith(partial) and len(partial) < len(full)
    assert evs[-1][1] == {"type": "overloaded_error", "message": evs[-1][1]["message"]}
    assert "overloaded" in evs[-1][1]["message"]
    assert fresh_sim.stats()["requests"] == 2  # nothing after the first byte is retried


def test_upstream_drop_is_an_error_event(app: AppServer, fresh_sim: Simulator) -> None:
    fresh_sim.inject("disconnect_midstream", after=10)
    evs = events(post(app, {"messages": LONG, "max_tokens": 100}))
    assert text_of(evs) and evs[-1][0] == "error"
    assert evs[-1][1]["type"] == "api_connection_error"


def test_upstream_stall_gets_pings_then_a_timeout_event(sim: Simulator, fresh_sim: Simulator) -> None:
    # The app pings every 15 s; a shorter interval makes the keep-alives visible within a test.
    settings = ChatSettings(base_url=sim.base_url, api_key=KEY, read_timeout=1.0, ping_interval=0.2)
    fresh_sim.inject("stall_midstream", after=5, stall_seconds=30)
    with AppServer(create_app(settings)) as app:
        started = time.monotonic()
        response = post(app, {"messages": LONG, "max_tokens": 100})
    assert time.monotonic() - started < 5
    body = response.content
    assert body.count(b": ping\n\n") >= 3  # comments keep proxies from closing a quiet connection
    evs = events(response)
    assert text_of(evs) and evs[-1] == ("error", {"type": "timeout_error", "message": evs[-1][1]["message"]})


def test_a_stream_that_keeps_talking_gets_no_pings(sim: Simulator, fresh_sim: Simulator) -> None:
    fresh_sim.speed = 5  # an event every few milliseconds: never quiet for the ping interval
    settings = ChatSettings(base_url=sim.base_url, api_key=KEY, ping_interval=0.5)
    with AppServer(create_app(settings)) as app:
        response = post(app, {"messages": LONG, "max_tokens": 100})
    assert b": ping" not in response.content and events(response)[-1][0] == "done"


def test_upstream_pool_holds_more_than_100_streams() -> None:
    # The SDK's default keeps only 100 upstream connections alive; a relay holds one per open stream.
    client = upstream_client(ChatSettings(api_key=KEY))
    transport = client._client._transport  # noqa: SLF001  (the relay's own transport, where the limits live)
    assert transport.max_connections >= 1000 and transport.max_keepalive >= 1000
    assert isinstance(client.timeout, httpx2.Timeout) and 0 < client.timeout.pool <= 10  # a full pool: a 503, soon
    asyncio.run(client.close())


def test_full_upstream_pool_is_a_503(sim: Simulator, fresh_sim: Simulator) -> None:
    fresh_sim.speed = 2  # paced: the first stream still holds the only connection when the second one asks
    settings = ChatSettings(base_url=sim.base_url, api_key=KEY, upstream_connections=1, pool_timeout=0.2, max_retries=0)
    with (
        AppServer(create_app(settings)) as app,
        httpx.stream("POST", app.url + "api/chat", json={"messages": LONG, "max_tokens": 200}) as first,
    ):
        assert first.status_code == 200
        second = post(app, {"messages": HELLO})
        assert second.status_code == 503 and second.json()["error"]["type"] == "overloaded_error"


def test_the_direct_upstream_request_is_the_sdks(sim: Simulator, fresh_sim: Simulator) -> None:
    # The app sends `POST /v1/messages` through the SDK's httpx2 client itself (relay.Upstream): it must be the
    # request `client.messages.with_streaming_response.create(**params, stream=True)` sends, header for header.
    sent: list[httpx2.Request] = []

    async def record(request: httpx2.Request) -> None:
        sent.append(request)

    async def scenario() -> None:
        client = upstream_client(ChatSettings(base_url=sim.base_url, api_key=KEY))
        client._client.event_hooks["request"].append(record)  # noqa: SLF001
        upstream = Upstream(client)
        assert upstream.direct
        params = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "Héllo"}], "system": "Hi"}
        async with client.messages.with_streaming_response.create(**params, stream=True) as response:
            by_sdk = await response.read()
        async with upstream.stream(params) as response:
            direct = await response.read()
        assert by_sdk.startswith(b"event: message_start") and direct.startswith(b"event: message_start")
        sdk_request, our_request = sent
        assert (our_request.method, our_request.url) == (sdk_request.method, sdk_request.url)
        assert our_request.headers.raw == sdk_request.headers.raw  # the same names, values and order
        assert json.loads(our_request.content) == json.loads(sdk_request.content)
        assert our_request.extensions == sdk_request.extensions  # the same timeouts

        # A client whose requests `create` would change (middleware here) keeps the SDK's own path.
        async def passing(request: object, call_next: Any) -> Any:
            return await call_next(request)

        assert not Upstream(client.with_options(middleware=[passing])).direct
        await client.close()

    asyncio.run(scenario())


def test_direct_upstream_retries_like_the_sdk(sim: Simulator, fresh_sim: Simulator) -> None:
    async def scenario() -> None:
        client = upstream_client(ChatSettings(base_url=sim.base_url, api_key=KEY, max_retries=1))
        upstream = Upstream(client)
        fresh_sim.inject("overloaded", retry_after=0.01)  # one 529, absorbed by the retry
        async with upstream.stream({"model": MODEL, "max_tokens": 5, "messages": HELLO}) as response:
            assert response.retries_taken == 1 and (await response.read()).startswith(b"event: message_start")
        fresh_sim.inject("rate_limit", count=2, retry_after=0.01)  # past the one retry: the SDK's own exception
        with pytest.raises(anthropic.RateLimitError):
            async with upstream.stream({"model": MODEL, "max_tokens": 5, "messages": HELLO}):
                pass
        await client.close()

    asyncio.run(scenario())


# The relay's own HTTP/1.1 transport under the SDK (course_utils/chat_app/transport.py), against a server that frames
# its answers every way HTTP/1.1 allows, sends them in awkward pieces, and counts its connections.
GZIPPED = gzip.compress(b"hello world")
FRAMINGS = {
    "chunked": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        [b"5;ext=1\r\nhello\r\n", b"6", b"\r\n wor", b"ld\r\n0\r\nX-Trailer: 1\r\n", b"\r\n"],
        True,
    ),
    "content-length": (b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nhel", [b"lo", b" world"], True),
    "to-the-close": (b"HTTP/1.1 200 OK\r\n\r\nhello", [b" world"], False),
    "connection-close": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\n",
        [b"hello world"],
        False,
    ),
    # The server closes the connection after a complete answer that promised to keep it (its keep-alive timeout):
    # the next request must notice and take a new connection, not fail on the dead one.
    "closed-while-idle": (b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", [b"hello world"], False),
    "gzip": (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(GZIPPED),
        [GZIPPED],
        True,
    ),
    "interim-first": (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n",
        [b"hello world"],
        True,
    ),
}


class FramingServer:
    """Answers `GET /<framing>` as FRAMINGS says, one write per piece; counts connections and notices closes."""

    def __init__(self) -> None:
        self.connections = 0
        self.closed = asyncio.Event()  # a connection ended by the client
        self.handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self._server = server
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.handlers.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                name = head.split(b" ")[1].strip(b"/").decode()
                if name == "endless":  # a stream that only ends when the client leaves
                    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
                    await writer.drain()
                    await reader.read()  # b"" once the client has closed the connection
                    self.closed.set()
                    return
                first, pieces, keep = FRAMINGS[name]
                for piece in [first, *pieces]:
                    writer.write(piece)
                    await writer.drain()
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            self.closed.set()
        finally:
            writer.close()

    async def stop(self) -> None:
        await asyncio.wait_for(asyncio.gather(*self.handlers), 5)  # every client's close seen: none left mid-read
        self._server.close()
        await self._server.wait_closed()


def test_relay_transport_reads_every_framing_and_reuses_connections() -> None:
    async def scenario() -> None:
        server = FramingServer()
        url = await server.start()
        for name, (_, _, keep) in FRAMINGS.items():
            before = server.connections
            async with httpx2.AsyncClient(transport=UpstreamTransport()) as client:
                for _ in range(2):
                    response = await client.get(f"{url}/{name}")
                    assert (response.status_code, response.content) == (200, b"hello world"), name
            # A complete answer that allowed it leaves its connection for the next request; the others do not.
            assert server.connections - before == (1 if keep else 2), name
        async with httpx2.AsyncClient(transport=UpstreamTransport()) as client:
            # The relay reads an identity body straight from the transport, an encoded one decoded as the SDK would.
            sdk = anthropic.AsyncAnthropic(api_key=KEY, base_url=url)
            for name in ("content-length", "gzip"):
                async with client.stream("GET", f"{url}/{name}") as response:
                    body = _Streamed(
                        raw=response,
                        client=sdk,
                        cast_to=httpx2.Response,
                        stream=True,
                        stream_cls=None,
                        options=FinalRequestOptions.construct(method="get", url="/"),
                    )
                    assert b"".join([chunk async for chunk in body.iter_bytes()]) == b"hello world", name
            # Leaving a stream before its end closes its connection at once: the server's read ends.
            async with client.stream("GET", f"{url}/endless") as response:
                assert await response.aiter_bytes().__anext__() == b"hello"
            await asyncio.wait_for(server.closed.wait(), 5)
        await server.stop()

    asyncio.run(scenario())


def test_relay_transport_fails_like_httpx2() -> None:
    async def scenario() -> None:
        with socket.socket() as sock:  # a port nobody listens on
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        async with httpx2.AsyncClient(transport=UpstreamTransport()) as client:
            with pytest.raises(httpx2.ConnectError):
                await client.get(f"http://127.0.0.1:{port}/")
        cut = await asyncio.start_server(
            lambda r, w: w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nhi") or w.close(), "127.0.0.1", 0
        )
        cut_url = f"http://127.0.0.1:{cut.sockets[0].getsockname()[1]}/"
        async with httpx2.AsyncClient(transport=UpstreamTransport()) as client:
            with pytest.raises(httpx2.RemoteProtocolError):  # the connection ended before the announced length
                await client.get(cut_url)
        cut.close()
        await cut.wait_closed()

    asyncio.run(scenario())


# -- disconnects: the upstream closes at once --------------------------------------------------------------------------


def test_client_disconnect_closes_the_upstream(app: AppServer, fresh_sim: Simulator) -> None:
    fresh_sim.speed = 5  # paced, so the answer is still being generated when the client leaves
    received = []
    for event in stream_chat(app.url, LONG, max_tokens=2000):
        received.append(event)
        if len(received) == 3:
            break  # leaving the loop closes the connection
    started = time.monotonic()
    assert fresh_sim.wait_idle(2.0)
    assert time.monotonic() - started < 0.5
    assert fresh_sim.stats()["streams_abandoned"] == 1 and fresh_sim.stats()["streams_completed"] == 0


def test_leaving_a_fast_stream_logs_no_error(app: AppServer, fresh_sim: Simulator) -> None:
    # Leaving while events pile up makes FastAPI's SSE teardown raise BrokenResourceError (fastapi 0.165), which
    # uvicorn would log as a crash on every Stop; the app's QuietDisconnects middleware drops exactly that.
    with server_errors() as errors:
        for _ in range(10):
            with httpx.stream("POST", app.url + "api/chat", json={"messages": LONG, "max_tokens": 2000}) as response:
                next(response.iter_bytes())
        assert fresh_sim.wait_idle(2.0) and app.wait_idle(2.0)  # teardown (and any logging) is over
    assert errors == []


@pytest.mark.slow
def test_client_that_stopped_reading_still_closes_the_upstream() -> None:
    # A slow client: it stops reading until the server's writes block, then leaves. The relay generator is then
    # parked at a `yield` that is never resumed, so only the yield dependency can close the upstream promptly
    # (an `async with` inside the generator would wait for the generator to be garbage-collected).
    with Simulator(speed=15) as sim:
        app = create_app(ChatSettings(base_url=sim.base_url, api_key=KEY))

        @app.get("/_tasks")
        async def tasks() -> list[str]:  # the response's own task (keep-alive) must end with it too
            return [name for t in asyncio.all_tasks() if (name := t.get_coro().__qualname__).endswith(".ping")]

        server = AppServer(app)
        # Small buffers on both ends stand for a slow network: the server's writes block after ~80 KB.
        server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        body = json.dumps({"messages": LONG, "max_tokens": MAX_TOKENS_LIMIT}).encode()
        with server, socket.socket() as conn:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
            conn.connect((server.host, server.port))
            conn.sendall(
                b"POST /api/chat HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            time.sleep(3.5)  # blocked by now, while the upstream is still generating (it needs ~4 s)
            assert sim.stats()["streams_open"] == 1
            assert httpx.get(server.url + "_tasks").json() == ["EventStreamResponse.stream_response.<locals>.ping"]
            conn.close()
            started = time.monotonic()
            assert sim.wait_idle(1.0)
            assert time.monotonic() - started < 0.5
            assert server.wait_idle(1.0) and httpx.get(server.url + "_tasks").json() == []
        assert sim.stats()["streams_abandoned"] == 1


# -- the page, the config, the command line ----------------------------------------------------------------------------


def test_page_config_and_health(app: AppServer) -> None:
    page = httpx.get(app.url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for asset in ("static/sse.js", "static/chat.js", "static/chat.css"):
        # Relative, so the page also works under a path prefix (jupyter-server-proxy serves it at /proxy/<port>/).
        assert f'"{asset}"' in page.text
        assert httpx.get(app.url + asset).status_code == 200
    script = httpx.get(app.url + "static/chat.js").text
    assert 'fetch("api/chat"' in script and 'fetch("api/config")' in script and 'fetch("/' not in script
    config = httpx.get(app.url + "api/config").json()
    assert config["model"] == MODEL and MODEL in config["models"] and config["max_tokens"]["max"] == MAX_TOKENS_LIMIT
    assert httpx.get(app.url + "healthz").json() == {"ok": True}
    assert httpx.get(app.url + "nowhere").json()["error"]["type"] == "not_found_error"


def test_client_helper_raises_chat_error(app: AppServer, fresh_sim: Simulator) -> None:
    fresh_sim.inject("rate_limit", count=3, retry_after=0.01)
    with pytest.raises(ChatError) as caught:
        list(stream_chat(app.url, HELLO))
    assert caught.value.status == 429 and caught.value.headers == {"retry-after": "0.01"}


@pytest.mark.slow
def test_command_line_serves_the_page_and_exits_on_sigterm_mid_stream() -> None:
    env = {**os.environ, "COURSE_OFFLINE": "1", "COURSE_SIM_SPEED": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "course_utils.chat_app", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()  # type: ignore[union-attr]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        assert "simulator" in proc.stdout.readline()  # type: ignore[union-attr]
        assert "<title>" in httpx.get(url, timeout=5).text
        stream = stream_chat(url, LONG, max_tokens=2000)
        assert next(stream).event == "text"  # a stream is open...
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)  # ...and the server still stops, after its graceful-shutdown delay
        assert proc.wait(timeout=10) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it is done
        assert time.monotonic() - started < 5
        stream.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            pipe.close()  # type: ignore[union-attr]
