"""Two small ASGI middlewares: a body limit that answers in the app's JSON error shape, and quiet disconnects."""

from __future__ import annotations

import logging

import anyio
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_body


class BodyLimit:
    """A body over `max_bytes` gets a 413 before the app parses any of it.

    Starlette's own limit (FastAPI's `max_body_size=`) replaces the answer to an over-long `Content-Length` with
    plain text "Content Too Large", so the page could not show its usual error banner.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    def _message(self) -> str:
        return f"The body is larger than the limit of {self.max_bytes} bytes."

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            # Answer from the header alone: no need to read (and pay for) a body we will refuse.
            await JSONResponse(error_body("request_too_large", self._message()), status_code=413)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:  # a chunked body has no Content-Length to check up front
                raise HTTPException(413, self._message())
            return message

        await self.app(scope, counted, send)


class QuietDisconnects:
    """Swallow the error FastAPI's SSE raises after a client left mid-stream, instead of logging it as a crash.

    When the client disconnects while FastAPI's keep-alive task is blocked handing an event on, tearing the response
    down raises `ExceptionGroup[anyio.BrokenResourceError]`, which uvicorn logs as "Exception in ASGI application"
    (fastapi 0.165; discussion fastapi/fastapi#15725). The stream is already over and the upstream already closed:
    only errors of that kind, after the response started, are dropped; anything else still propagates.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except* (anyio.BrokenResourceError, anyio.ClosedResourceError) as group:
            if not started:
                raise
            logging.getLogger("course_utils.chat_app").debug("client left mid-stream: %r", group)
