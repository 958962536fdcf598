"""Consuming the chat endpoint from Python with httpx: what a test, a script or another service would do."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from ..sse import ServerSentEvent, parse_sse
from .errors import ChatError


def stream_chat(
    base_url: str, messages: list[dict[str, str]], *, timeout: float = 30.0, **params: Any
) -> Iterator[ServerSentEvent]:
    """POST a conversation to `/api/chat` and yield its events as they arrive; an error answer raises `ChatError`.

    Leaving the loop early closes the connection, which is how a client says "stop".
    """
    url = base_url.rstrip("/") + "/api/chat"
    with httpx.stream("POST", url, json={"messages": messages, **params}, timeout=timeout) as response:
        if response.is_error:
            response.read()
            error = response.json().get("error", {})
            raise ChatError(
                response.status_code,
                error.get("type", "unknown"),
                error.get("message", ""),
                {k: v for k, v in response.headers.items() if k == "retry-after"},
            )
        yield from parse_sse(response.iter_bytes(), strict_eof=True)
