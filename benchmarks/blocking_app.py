"""The same `POST /api/chat` endpoint, written the blocking way: one OS thread per request, the synchronous SDK.

It is the design lesson 03 argues against in words, built so the benchmark can argue with numbers: the same
request schema, the same upstream settings, the same events byte for byte (`text`, then one `done` or `error`),
served by the standard library's `ThreadingHTTPServer` (HTTP/1.1, keep-alive, chunked bodies).

    python -m benchmarks.apps --app blocking --upstream http://127.0.0.1:PORT --port 8001
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anthropic
import httpx2  # the SDK's transport: mid-stream drops and stalls surface as its exceptions
import pydantic
from fastapi.sse import format_sse_event

from course_utils.chat_app.errors import error_body, from_upstream, stream_error
from course_utils.chat_app.schema import MAX_BODY_BYTES, ChatRequest
from course_utils.chat_app.settings import ChatSettings


def sync_upstream(settings: ChatSettings) -> anthropic.Anthropic:
    """The synchronous twin of the app's upstream client: same retries, same timeouts."""
    timeout = anthropic.Timeout(settings.read_timeout, connect=settings.connect_timeout)
    return anthropic.Anthropic(
        base_url=settings.base_url, api_key=settings.api_key, max_retries=settings.max_retries, timeout=timeout
    )


def sse(event: str, data: dict[str, Any]) -> bytes:
    """One event framed exactly as FastAPI frames the async app's (`json.dumps` with its default separators)."""
    return format_sse_event(data_str=json.dumps(data), event=event)


class ChatHandler(BaseHTTPRequestHandler):
    """One instance per connection, on its own thread; it blocks on the upstream while it relays."""

    protocol_version = "HTTP/1.1"  # keep-alive, and chunked bodies for streams of unknown length
    server: BlockingChatServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silent, as the async app runs with uvicorn's access log off."""

    def do_GET(self) -> None:
        """`/healthz` answers; anything else is a 404."""
        if self.path == "/healthz":
            self._json(200, {"ok": True})
        else:
            self._json(404, error_body("not_found_error", "Not Found"))

    def do_POST(self) -> None:
        """`/api/chat`: validate, open the upstream, relay its text as SSE until it ends or the client leaves."""
        if self.path != "/api/chat":
            self._json(404, error_body("not_found_error", "Not Found"))
            return
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body would otherwise be taken for the next request
            self._json(413, error_body("request_too_large", "The body is larger than the limit."))
            return
        with ExitStack() as stack:
            try:
                params = ChatRequest.model_validate_json(self.rfile.read(length)).to_params(self.server.settings)
                stream = stack.enter_context(self.server.client.messages.stream(**params))
            except (pydantic.ValidationError, ValueError) as exc:
                self._json(422, error_body("invalid_request_error", str(exc).splitlines()[0]))
                return
            except anthropic.APIError as exc:
                error = from_upstream(exc)
                self._json(error.status, error_body(error.type, error.message), error.headers)
                return
            try:
                self._relay(stream)
            except OSError:
                self.close_connection = True  # the client went away: leaving the `with` closes the upstream

    def _relay(self, stream: anthropic.MessageStream) -> None:
        self.send_response(200)
        for name, value in (
            ("content-type", "text/event-stream; charset=utf-8"),
            ("cache-control", "no-cache"),
            ("x-accel-buffering", "no"),
            ("transfer-encoding", "chunked"),
        ):
            self.send_header(name, value)
        self.end_headers()
        try:
            for text in stream.text_stream:
                self._chunk(sse("text", {"text": text}))
            message = stream.get_final_message()
        except (anthropic.APIError, httpx2.TransportError) as exc:
            self._chunk(sse("error", stream_error(exc)))
        else:
            usage = {"input_tokens": message.usage.input_tokens, "output_tokens": message.usage.output_tokens}
            self._chunk(sse("done", {"stop_reason": message.stop_reason, "usage": usage}))
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, data: bytes) -> None:
        # One write per event: the handler's file is unbuffered, so each event leaves at once.
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


class BlockingChatServer(ThreadingHTTPServer):
    """A thread per connection, with a listen backlog deep enough for a thousand clients arriving at once."""

    daemon_threads = True
    request_queue_size = 2048  # the standard library's default of 5 drops connections in a burst

    def __init__(self, address: tuple[str, int], settings: ChatSettings) -> None:
        super().__init__(address, ChatHandler)
        self.settings = settings
        self.client = sync_upstream(settings)


def serve(settings: ChatSettings, host: str, port: int) -> None:
    """Serve the blocking chat endpoint until interrupted."""
    with BlockingChatServer((host, port), settings) as server:
        server.serve_forever(poll_interval=0.1)


__all__ = ["BlockingChatServer", "serve", "sync_upstream"]
