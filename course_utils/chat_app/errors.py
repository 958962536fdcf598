"""Errors as the browser sees them: one JSON shape before the stream, one `error` event after its first byte.

Nothing from upstream passes through unfiltered: no API key, no upstream headers (except `retry-after`), no
stack trace. Only a type the page can branch on and a sentence a person can read.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2  # the SDK's transport: mid-stream drops and stalls surface as its exceptions, unwrapped
from fastapi.responses import JSONResponse


def error_body(error_type: str, message: str) -> dict[str, Any]:
    """The JSON body of every error answer: `{"error": {"type": ..., "message": ...}}`."""
    return {"error": {"type": error_type, "message": message}}


class ChatError(Exception):
    """A failure answered with a real HTTP status, because no byte of the stream has been sent yet."""

    def __init__(self, status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> None:
        """An error answer: status, type, message, and any headers it needs (e.g. `retry-after`)."""
        super().__init__(message)
        self.status, self.type, self.message, self.headers = status, error_type, message, headers or {}

    def response(self) -> JSONResponse:
        """This error as a JSON response."""
        return JSONResponse(error_body(self.type, self.message), status_code=self.status, headers=self.headers)


def from_upstream(exc: anthropic.APIError) -> ChatError:
    """The HTTP error to answer for an upstream failure that happened before the first byte (after SDK retries)."""
    if isinstance(exc, anthropic.APITimeoutError) and isinstance(exc.__cause__, httpx2.PoolTimeout):
        # Every upstream connection this process may hold is in use: this server is full, not the model slow.
        return ChatError(503, "overloaded_error", "The server is busy with other answers right now. Try again soon.")
    if isinstance(exc, anthropic.APITimeoutError):
        return ChatError(504, "timeout_error", "The model did not answer in time. Try again.")
    if isinstance(exc, anthropic.APIConnectionError):
        return ChatError(502, "api_connection_error", "The server could not reach the model. Try again.")
    if not isinstance(exc, anthropic.APIStatusError):
        return ChatError(502, "api_error", "The model could not answer. Try again.")
    # Pass on when to come back, not the upstream's other headers (request ids, rate-limit counters, cookies).
    retry_after = exc.response.headers.get("retry-after")
    headers = {"retry-after": retry_after} if retry_after else {}
    if exc.status_code == 429:
        return ChatError(429, "rate_limit_error", "Too many requests right now. Wait a moment and try again.", headers)
    if exc.status_code in (503, 529):
        # 529 is the API's own code; proxies and browsers know 503 as "overloaded, come back later".
        return ChatError(503, "overloaded_error", "The model is overloaded right now. Try again in a moment.", headers)
    if exc.status_code >= 500:
        return ChatError(502, "api_error", "The model had an internal error. Try again.", headers)
    # A 4xx from upstream is this server's fault (validation should have caught it, or the key is wrong):
    # the browser cannot fix it, so it is a bad gateway, named by the upstream type only.
    return ChatError(502, "api_error", f"The model rejected this server's request ({exc.type or exc.status_code}).")


_MIDSTREAM_MESSAGES = {
    "overloaded_error": "The model is overloaded and stopped mid-answer. Try again in a moment.",
    "rate_limit_error": "Rate limit reached mid-answer. Wait a moment and try again.",
}


def stream_error(exc: Exception) -> dict[str, str]:
    """The data of the `error` event for a failure after the first byte, when the 200 can no longer change."""
    error_type: str  # the API's types, plus this app's own (`api_connection_error`, `internal_error`)
    if isinstance(exc, anthropic.APIStatusError):  # the upstream's own `event: error` (status_code is 200)
        error_type = exc.type or "api_error"
        message = _MIDSTREAM_MESSAGES.get(error_type, "The model reported an error mid-answer. Try again.")
    elif isinstance(exc, (httpx2.TimeoutException, anthropic.APITimeoutError)):
        error_type, message = "timeout_error", "The model went silent mid-answer. Try again."
    elif isinstance(exc, (httpx2.TransportError, anthropic.APIConnectionError)):
        error_type, message = "api_connection_error", "The connection to the model was lost mid-answer. Try again."
    else:
        error_type, message = "internal_error", "The server failed mid-answer. Try again."
    return {"type": error_type, "message": message}
