"""The stream itself: open the upstream in a dependency, relay its bytes to the browser as `text` / `done` / `error`.

Why the upstream's own bytes rather than the SDK's events: the page needs the text deltas, the stop reason, the usage
and how the stream ended; nothing else. Reading those few fields from the upstream's SSE and framing each answer
event by hand costs about a tenth of what the SDK's `MessageStream` (a pydantic event and a message snapshot per
delta) and FastAPI's `EventSourceResponse` (a pydantic `ServerSentEvent`, two memory streams and a cancel scope per
event) cost together; `benchmarks/proxy_hop.py` measures both and checks they send the same events.

Why `Upstream` rather than `client.messages.with_streaming_response.create(...)` itself: the request is the SDK's
(its headers, body, retries, backoff and status-to-exception mapping, all before the first byte), but building it
through the SDK's general machinery (parameter transforms, request options, tracing hooks) cost the relay about 2 ms
of CPU per request, a quarter of what a whole paced stream costs. `Upstream` sends the same bytes through the SDK's
own httpx2 client and calls the SDK's own retry policy and error constructor; a client with middleware, custom auth
or default query parameters still goes through `create(...)`, which honours them. `tests/test_app_api.py` checks the
two requests are the same.

Why a dependency with `yield` rather than `async with` inside the generator:
- FastAPI exits it when the response ends, whatever the generator's state. A generator blocked at `yield` (the
  client stopped reading, then left) is never resumed, so an `async with` inside it would keep the upstream open
  until garbage collection; the dependency closes it at once, in every case.
- It runs before the response starts, so an upstream 429/529 can still become a real HTTP status.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

import anthropic
import httpx2
from anthropic._models import FinalRequestOptions
from anthropic._response import AsyncAPIResponse
from fastapi import Depends, Request
from fastapi.responses import StreamingResponse
from starlette.types import Send

from ..sse import SSEParser  # the parser of lesson 02
from .errors import ChatError, from_upstream, stream_error
from .schema import ChatRequest
from .settings import ChatSettings

log = logging.getLogger("course_utils.chat_app")
log.addHandler(logging.NullHandler())  # a library stays silent unless the program (the CLI) configures logging

PING = b": ping\n\n"  # an SSE comment: proxies see bytes on a quiet connection, the page's parser ignores it
EVENT_STREAM_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}  # no caching, no nginx buffering


class _Streamed(AsyncAPIResponse[Any]):
    """The SDK's response object, whose bytes come straight from the transport's stream when they are not encoded:
    httpx2's `aiter_bytes` and `aiter_raw` add two generator layers (a decoder, a byte counter) to every upstream read,
    which an identity-encoded event stream does not need."""

    async def iter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """The body as it arrives (`AsyncAPIResponse.iter_bytes` for an encoded body or a chunk size)."""
        raw = self.http_response
        if chunk_size is not None or raw.headers.get("content-encoding", "identity") != "identity":
            async for chunk in super().iter_bytes(chunk_size):
                yield chunk
            return
        stream = raw.stream
        assert isinstance(stream, httpx2.AsyncByteStream)  # an async client's streamed response
        async for chunk in stream:
            yield chunk


class Upstream:
    """`POST /v1/messages` with `stream: true` as the SDK sends it, for one SDK client: `stream(params)` is entered
    like `client.messages.with_streaming_response.create(**params, stream=True)` and gives the same response."""

    def __init__(self, client: anthropic.AsyncAnthropic) -> None:
        self.client, self.http = client, client._client  # noqa: SLF001  (the SDK's httpx2 client: its pool, its hooks)
        self.url = client.base_url.join("v1/messages")
        timeout = client.timeout
        read = timeout.read if isinstance(timeout, httpx2.Timeout) else timeout
        # What the SDK writes for a `create(..., stream=True)` given no per-call options, in its order.
        self.headers: dict[str, str] = {
            "x-stainless-timeout": str(anthropic.NOT_GIVEN),
            "x-stainless-retry-count": "0",
            **({"x-stainless-read-timeout": str(read)} if read is not None else {}),
            **{k: v for k, v in client.default_headers.items() if isinstance(v, str)},
            "X-Stainless-Raw-Response": "stream",
        }
        self.options = FinalRequestOptions.construct(method="post", url="/v1/messages")  # for the retry policy
        names = {name.lower() for name in self.headers}
        # Anything `create` would add to this request (middleware, an auth flow, query parameters): let it.
        self.direct = (
            not client.middleware
            and client.custom_auth is None
            and not client.default_query
            and ("authorization" in names or "x-api-key" in names)
        )

    def stream(self, params: dict[str, Any]) -> AbstractAsyncContextManager[AsyncAPIResponse[Any]]:
        """Entering sends the request and waits for a 2xx status line, after the retries; exiting closes it."""
        if not self.direct:
            return self.client.messages.with_streaming_response.create(**params, stream=True)
        return self._opened(params)

    @asynccontextmanager
    async def _opened(self, params: dict[str, Any]) -> AsyncIterator[AsyncAPIResponse[Any]]:
        response = await self._send(
            json.dumps({**params, "stream": True}, ensure_ascii=False, separators=(",", ":")).encode()
        )
        try:
            yield response
        finally:
            await response.close()

    async def _send(self, body: bytes) -> AsyncAPIResponse[Any]:
        """The SDK's attempt loop (`_base_client.AsyncAPIClient._request`), for one request with no options."""
        client, retries = self.client, self.client.max_retries
        for attempt in range(retries + 1):
            headers = self.headers if attempt == 0 else {**self.headers, "x-stainless-retry-count": str(attempt)}
            request = self.http.build_request("POST", self.url, content=body, headers=headers)
            try:
                response = await self.http.send(request, stream=True)
            except Exception as exc:  # what the SDK wraps: a timeout, or any other failure to get an answer
                error = (
                    anthropic.APITimeoutError(request=request)
                    if isinstance(exc, httpx2.TimeoutException)
                    else anthropic.APIConnectionError(request=request)
                )
                if attempt == retries:
                    raise error from exc
                await asyncio.sleep(client._calculate_retry_timeout(retries - attempt, self.options))  # noqa: SLF001
                continue
            if response.is_success:
                return _Streamed(
                    raw=response,
                    client=client,
                    cast_to=httpx2.Response,
                    stream=True,
                    stream_cls=None,
                    options=self.options,
                    retries_taken=attempt,
                )
            if attempt < retries and client._should_retry(response):  # noqa: SLF001
                await response.aclose()
                await asyncio.sleep(
                    client._calculate_retry_timeout(  # noqa: SLF001
                        retries - attempt, self.options, response.headers
                    )
                )
                continue
            await response.aread()
            raise client._make_status_error_from_response(response) from None  # noqa: SLF001
        raise AssertionError("unreachable: the last attempt returns or raises")


async def open_upstream(chat: ChatRequest, request: Request) -> AsyncIterator[AsyncAPIResponse[Any]]:
    """Yield dependency: the upstream response, open once the upstream has answered 200, closed when ours ends."""
    settings: ChatSettings = request.app.state.settings
    upstream: Upstream = request.app.state.upstream
    try:
        params = chat.to_params(settings)
    except ValueError as exc:
        raise ChatError(422, "invalid_request_error", str(exc)) from None
    async with AsyncExitStack() as stack:
        try:
            # Entering sends the request and waits for the status line, after the SDK's retries; the body stays bytes.
            response = await stack.enter_async_context(upstream.stream(params))
        except anthropic.APIError as exc:
            log.warning("upstream failed before the stream: %s", type(exc).__name__)
            raise from_upstream(exc) from None
        yield response


def frame(event: str, data: dict[str, Any]) -> bytes:
    """One SSE event as bytes: `event: <name>` and one `data:` line of JSON (json.dumps escapes every newline)."""
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class UpstreamEvents:
    """The upstream's events as `(name, data)`, from its bytes as they arrive; `data` is the JSON, undecoded.

    The API frames every event as `event: <name>\ndata: <one line of JSON>\n\n`, so those are cut out with two
    byte searches. Anything else (another line ending, a comment, several `data:` lines) goes to lesson 02's
    general parser, `course_utils.sse.SSEParser`, from that event on: same events, only slower.
    """

    def __init__(self) -> None:
        self._pending = b""  # the start of an event whose blank line has not arrived yet
        self._general: SSEParser | None = None

    def feed(self, chunk: bytes) -> list[tuple[str | None, bytes | str]]:
        """The events `chunk` completed (often none, or one)."""
        if self._general is not None:
            return self._general_events(chunk)
        buffer, self._pending = self._pending + chunk, b""  # the buffer starts at an event's first byte
        if b"\r" in chunk:
            return self._switch(buffer)
        events: list[tuple[str | None, bytes | str]] = []
        start = 0
        while (end := buffer.find(b"\n\n", start)) != -1:
            newline = buffer.find(b"\n", start, end)
            if not (
                newline != -1
                and buffer.startswith(b"event: ", start)
                and buffer.startswith(b"data: ", newline + 1)
                and buffer.find(b"\n", newline + 1, end) == -1
            ):
                return events + self._switch(buffer[start:])
            events.append((buffer[start + 7 : newline].decode(), buffer[newline + 7 : end]))
            start = end + 2
        self._pending = buffer[start:]
        return events

    def _switch(self, rest: bytes) -> list[tuple[str | None, bytes | str]]:
        """Hand `rest`, which starts at an event's first byte, and all that follows to the general parser."""
        self._general = SSEParser(strict_eof=True)
        return self._general_events(rest)

    def _general_events(self, chunk: bytes) -> list[tuple[str | None, bytes | str]]:
        return [(event.event, event.data) for event in self._general.feed(chunk)]  # type: ignore[union-attr]


@dataclass
class Outcome:
    """What a relayed answer came to, for whoever must act on it afterwards (history, token counts)."""

    keep_text: bool = False  # collect the text (server-held history needs it)
    quota_cut: str | None = None  # the error message to send if the answer stops at max_tokens (the day's quota)
    ids: str | None = None  # with a prefix, every event gets `id: <prefix>:<n>` (resumable answers)
    texts: list[str] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=lambda: {"input_tokens": 0, "output_tokens": 0})
    deltas: int = 0  # text events sent: an estimate of the tokens used when the final usage never came
    seq: int = 0  # events framed so far (the last id)
    completed: bool = False  # a `done` was sent


async def relay(response: AsyncAPIResponse[Any], outcome: Outcome | None = None) -> AsyncIterator[bytes]:
    """The browser's events, framed: `text` per text delta, then exactly one of `done` or `error`.

    Of the upstream's events only text deltas, the usage, the stop reason and the end are decoded; the rest
    (`ping`, block starts and stops, other kinds of delta) pass unread. The events of one upstream read go on as one
    write: one event per read when the model is paced, fewer writes when the relay has to catch up. With an
    `outcome` the relay also notes what the answer came to (and, if asked, numbers the events).
    """
    parser = UpstreamEvents()  # an unterminated last event is never dispatched, as in the SDK
    usage = outcome.usage if outcome is not None else {"input_tokens": 0, "output_tokens": 0}
    stop_reason = None
    frames: list[bytes] = []
    make = frame if outcome is None or outcome.ids is None else _numbered(outcome)
    try:
        async for chunk in response.iter_bytes():
            for name, raw in parser.feed(chunk):
                if name == "content_block_delta":
                    delta = json.loads(raw)["delta"]
                    if delta.get("type") == "text_delta":
                        frames.append(make("text", {"text": delta["text"]}))
                        if outcome is not None:
                            outcome.deltas += 1
                            if outcome.keep_text:
                                outcome.texts.append(delta["text"])
                elif name == "message_start":
                    usage["input_tokens"] = json.loads(raw)["message"]["usage"]["input_tokens"]
                elif name == "message_delta":
                    data = json.loads(raw)
                    stop_reason = data["delta"]["stop_reason"]
                    usage.update({k: v for k, v in data.get("usage", {}).items() if k in usage and v is not None})
                elif name == "message_stop":
                    if outcome is not None and outcome.quota_cut and stop_reason == "max_tokens":
                        # Stopped by the day's quota, not by the browser's max_tokens: say so, and keep no turn.
                        frames.append(make("error", {"type": "rate_limit_error", "message": outcome.quota_cut}))
                    else:
                        frames.append(make("done", {"stop_reason": stop_reason, "usage": usage}))
                        if outcome is not None:
                            outcome.completed = True
                    yield b"".join(frames)
                    return
                elif name == "error":  # the upstream's own error, after its 200: what the SDK would raise
                    body = json.loads(raw)
                    raise anthropic.APIStatusError(str(body), response=response.http_response, body=body)
            if frames:
                yield b"".join(frames)
                frames.clear()
        raise httpx2.RemoteProtocolError("the upstream stream ended before message_stop")
    except Exception as exc:  # never BaseException: a disconnect's CancelledError must go on up
        if isinstance(exc, (anthropic.APIError, httpx2.TransportError)):
            log.warning("upstream failed mid-stream: %s", type(exc).__name__)
        else:
            log.exception("relay failed mid-stream")
        yield b"".join([*frames, make("error", stream_error(exc))])  # the text before the error comes first


def _numbered(outcome: Outcome) -> Callable[[str, dict[str, Any]], bytes]:
    """A `frame` that puts the next `id:` line on each event."""

    def make(event: str, data: dict[str, Any]) -> bytes:
        outcome.seq += 1
        return b"id: %s:%d\n%s" % (outcome.ids.encode(), outcome.seq, frame(event, data))  # type: ignore[union-attr]

    return make


UpstreamResponse = Annotated[AsyncAPIResponse[Any], Depends(open_upstream)]


class EventStreamResponse(StreamingResponse):
    """An event stream: `frames` as they come, plus a `: ping` comment whenever nothing was sent for `ping_interval`
    seconds (None: never), with the headers an event stream needs.

    The frames are pulled and sent by the response itself, as by any `StreamingResponse`; the comment is sent by a
    small task of its own, between two frames, so keep-alive costs nothing per event. (A timeout around each pull
    would cancel the generator mid-read; FastAPI's SSE hands every event through two memory streams and a cancel
    scope instead.) The task ends with the response, however it ends.
    """

    def __init__(
        self,
        frames: AsyncIterator[bytes],
        ping_interval: float | None = 15.0,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            frames, status_code, headers={**EVENT_STREAM_HEADERS, **(headers or {})}, media_type="text/event-stream"
        )
        self.ping_interval = ping_interval

    async def stream_response(self, send: Send) -> None:
        """Send the frames, and the comments meanwhile."""
        loop = asyncio.get_running_loop()
        last_sent, sending, interval = loop.time(), False, self.ping_interval

        async def ping(interval: float) -> None:
            nonlocal last_sent
            while True:
                # Never less than a tenth of the interval: a client that reads slowly must not make this spin.
                await asyncio.sleep(max(last_sent + interval - loop.time(), interval / 10))
                if not sending and loop.time() - last_sent >= interval:
                    last_sent = loop.time()
                    try:
                        await send({"type": "http.response.body", "body": PING, "more_body": True})
                    except Exception:  # the client left: the response itself sees it and ends
                        return

        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        pinger = asyncio.ensure_future(ping(interval)) if interval else None
        try:
            async for chunk in self.body_iterator:
                sending = True
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                sending, last_sent = False, loop.time()
        finally:
            if pinger is not None:
                pinger.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


# The 200 of `POST /api/chat` for the OpenAPI document: a plain `StreamingResponse` declares no content by itself.
EVENT_STREAM_RESPONSE: dict[str, Any] = {
    "description": "An event stream: `text` events, then exactly one `done` or `error`; `: ping` comments while the "
    "upstream is quiet.",
    "content": {
        "text/event-stream": {
            "itemSchema": {
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "event": {"type": "string", "enum": ["text", "done", "error"]},
                    "data": {"type": "string", "contentMediaType": "application/json"},
                },
            },
            "example": (
                frame("text", {"text": "Hello"})
                + frame("text", {"text": " there!"})
                + frame("done", {"stop_reason": "end_turn", "usage": {"input_tokens": 9, "output_tokens": 3}})
            ).decode(),
        }
    },
}
