"""A request-body size limit that answers in the app's own JSON error shape.

Starlette's limit (FastAPI's `max_body_size=`) replaces any answer to an over-long `Content-Length` with a plain
text "Content Too Large", so the page could not show a helpful message; this one is small enough to read.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_body


class BodyLimit:
    """Pure ASGI middleware: a body over `max_bytes` gets a 413 before the app parses any of it."""

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
