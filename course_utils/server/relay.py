"""The stream itself: open the upstream in a dependency, relay it to the browser as `text` / `done` / `error`.

Why a dependency with `yield` rather than `async with` inside the generator:
- FastAPI exits it when the response ends, whatever the generator's state. A generator blocked at `yield` (the
  client stopped reading, then left) is never resumed, so an `async with` inside it would keep the upstream open
  until garbage collection; the dependency closes it at once, in every case.
- It runs before the response starts, so an upstream 429/529 can still become a real HTTP status.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Annotated

import anthropic
import httpx2
from anthropic.lib.streaming import AsyncMessageStream
from fastapi import Depends, Request
from fastapi.sse import ServerSentEvent

from .errors import ChatError, from_upstream, stream_error
from .schema import ChatRequest
from .settings import ChatSettings

log = logging.getLogger("course_utils.server")
log.addHandler(logging.NullHandler())  # a library stays silent unless the program (the CLI) configures logging


async def open_upstream(chat: ChatRequest, request: Request) -> AsyncIterator[AsyncMessageStream]:
    """Yield dependency: the upstream stream, open once the upstream has answered 200, closed when the response ends."""
    settings: ChatSettings = request.app.state.settings
    client: anthropic.AsyncAnthropic = request.app.state.client
    try:
        params = chat.to_params(settings)
    except ValueError as exc:
        raise ChatError(422, "invalid_request_error", str(exc)) from None
    async with AsyncExitStack() as stack:
        try:
            # Entering sends the request and waits for the status line, after the SDK's retries.
            stream = await stack.enter_async_context(client.messages.stream(**params))
        except anthropic.APIError as exc:
            log.warning("upstream failed before the stream: %s", type(exc).__name__)
            raise from_upstream(exc) from None
        yield stream


UpstreamStream = Annotated[AsyncMessageStream, Depends(open_upstream)]


async def relay(stream: AsyncMessageStream) -> AsyncIterator[ServerSentEvent]:
    """The browser's events: `text` per delta, then exactly one of `done` or `error`."""
    try:
        async for text in stream.text_stream:
            yield ServerSentEvent(event="text", data={"text": text})
        message = await stream.get_final_message()
    except Exception as exc:  # never BaseException: a disconnect's CancelledError must go on up
        if isinstance(exc, (anthropic.APIError, httpx2.TransportError)):
            log.warning("upstream failed mid-stream: %s", type(exc).__name__)
        else:
            log.exception("relay failed mid-stream")
        yield ServerSentEvent(event="error", data=stream_error(exc))
        return
    usage = {"input_tokens": message.usage.input_tokens, "output_tokens": message.usage.output_tokens}
    yield ServerSentEvent(event="done", data={"stop_reason": message.stop_reason, "usage": usage})
