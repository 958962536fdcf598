"""Streaming that survives failures: bounded retries with jittered backoff, each retry a fresh request from scratch.

The SDK retries only *before* the HTTP 200 (429, 5xx, 529, connection errors). Everything after it, an `error`
event, a dropped connection (raw `httpx2.RemoteProtocolError`), a stall past the read timeout (raw
`httpx2.ReadTimeout`), reaches your code once, with part of the answer already shown. `stream_with_retries` handles
those: it restarts the request from scratch (a partial answer is not stitched to a new one: the new attempt is a
fresh generation that need not continue the old text, and its usage and stop reason describe only itself), keeps
the partial text of every failed attempt for display, and ends with one clear outcome:

    outcome = stream_with_retries(client, model=..., max_tokens=..., messages=[...], on_text=show)
    outcome.status   # "complete", "truncated" (stop_reason max_tokens) or "failed" (after N attempts)

Stalls are caught by a *read* timeout on the client, e.g. `client.with_options(timeout=httpx2.Timeout(60, read=10))`:
httpx2 timeouts are per operation (connect, each read, each write), not a deadline for the whole stream, so a long
answer that keeps arriving never times out while a silent one fails after `read` seconds.

Why a hand-written loop and not tenacity: lesson 05 writes the policy both ways. The loop is a dozen lines whose
every decision is visible and that mirrors the SDK's own retry loop; tenacity expresses the same policy in as many
lines plus its own vocabulary (`Retrying`, `AttemptManager`, `RetryCallState`, `reraise`). Tenacity earns its place
when one policy is shared by many call sites or needs its stop/wait combinators; for one streaming call, the loop is
clearer.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import anthropic
import httpx2
from anthropic.types import Message

from .history import IncompleteStream

__all__ = ["Attempt", "Backoff", "StreamOutcome", "is_retryable", "retry_after", "stream_with_retries"]

# Mid-stream `error` events arrive on an HTTP 200, so the status cannot say whether to retry; the error type can.
RETRYABLE_STREAM_ERRORS = {"overloaded_error", "api_error"}
# Transport failures worth another attempt (not programming errors such as an unsupported URL scheme).
RETRYABLE_TRANSPORT = (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError, IncompleteStream)

Status = Literal["complete", "truncated", "failed"]


def is_retryable(error: BaseException) -> bool:
    """Whether a fresh attempt could succeed: overloads, server errors, rate limits, drops and stalls; not 4xx."""
    if isinstance(error, (anthropic.APIConnectionError, *RETRYABLE_TRANSPORT)):  # APITimeoutError included
        return True
    if isinstance(error, anthropic.APIStatusError):
        if error.status_code == 200:
            return error.type in RETRYABLE_STREAM_ERRORS
        return error.status_code in (408, 409, 429) or error.status_code >= 500
    return False


def retry_after(error: BaseException | None) -> float | None:
    """The seconds an error response asked us to wait (`retry-after-ms` or `retry-after`), if any."""
    response = getattr(error, "response", None)
    if not isinstance(error, anthropic.APIStatusError) or response is None:
        return None
    for header, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return float(response.headers[header]) * scale
        except (KeyError, ValueError):
            continue
    return None


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: about `initial`, then twice that each retry, up to `maximum` seconds."""

    initial: float = 0.5
    maximum: float = 8.0
    jitter: float = 0.25  # up to this fraction is taken off at random, so clients that failed together spread out

    def __call__(self, retry: int, error: BaseException | None = None) -> float:
        """Seconds to wait before retry number `retry` (1 for the first), never less than the server asked."""
        ceiling = min(self.maximum, self.initial * 2 ** (retry - 1))
        return max(ceiling * (1 - self.jitter * random.random()), retry_after(error) or 0.0)


@dataclass(frozen=True)
class Attempt:
    """One request: the text it streamed, its final message or its error, and when it ran (monotonic seconds)."""

    number: int
    text: str
    message: Message | None
    error: BaseException | None
    started: float
    ended: float

    @property
    def seconds(self) -> float:
        """How long the attempt took."""
        return self.ended - self.started


@dataclass(frozen=True)
class StreamOutcome:
    """How a retried stream ended, with every attempt kept for display."""

    attempts: list[Attempt] = field(default_factory=list)

    @property
    def message(self) -> Message | None:
        """The final message of the attempt that finished, or None if none did."""
        return self.attempts[-1].message if self.attempts else None

    @property
    def status(self) -> Status:
        """`complete`, `truncated` (finished, but cut off by `max_tokens`) or `failed`."""
        if self.message is None:
            return "failed"
        return "truncated" if self.message.stop_reason == "max_tokens" else "complete"

    @property
    def text(self) -> str:
        """The answer's text when an attempt finished; empty when all failed (see `partial_texts`)."""
        return self.attempts[-1].text if self.message is not None else ""

    @property
    def partial_texts(self) -> list[str]:
        """What each failed attempt had streamed before it broke, oldest first."""
        return [a.text for a in self.attempts if a.error is not None]

    @property
    def last_error(self) -> BaseException | None:
        """The error that ended the last attempt (None when it finished)."""
        return self.attempts[-1].error if self.attempts else None

    def __str__(self) -> str:
        n = len(self.attempts)
        tries = f"{n} attempt{'s' if n != 1 else ''}"
        if self.status == "failed":
            error = self.last_error
            return f"failed after {tries}: {type(error).__name__}: {str(error)[:120]}"
        return f"{'truncated by max_tokens' if self.status == 'truncated' else 'complete'} after {tries}"


TextCallback = Callable[[str], object]
RetryCallback = Callable[[Attempt, float], object]


def _attempt(client: anthropic.Anthropic, number: int, request: dict[str, Any],
             on_text: TextCallback | None) -> Attempt:
    """Run one streaming request to its end, whatever that end is."""
    started, pieces = time.monotonic(), []
    message: Message | None = None
    error: BaseException | None = None
    try:
        with client.messages.stream(**request) as stream:
            for text in stream.text_stream:
                pieces.append(text)
                if on_text is not None:
                    on_text(text)
            message = stream.get_final_message()
        if message.stop_reason is None:
            message, error = None, IncompleteStream("the stream ended before message_delta carried a stop reason")
    except Exception as exc:  # API errors and the raw httpx2 ones alike; KeyboardInterrupt still stops everything
        error = exc
    return Attempt(number, "".join(pieces), message, error, started, time.monotonic())


def stream_with_retries(client: anthropic.Anthropic, *, max_attempts: int = 3,
                        backoff: Callable[[int, BaseException], float] = Backoff(),
                        on_text: TextCallback | None = None, on_retry: RetryCallback | None = None,
                        sleep: Callable[[float], object] = time.sleep, **request: Any) -> StreamOutcome:
    """Stream `messages.stream(**request)`, restarting from scratch on retryable failures, at most `max_attempts`."""
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    attempts: list[Attempt] = []
    for number in range(1, max_attempts + 1):
        attempt = _attempt(client, number, request, on_text)
        attempts.append(attempt)
        if attempt.error is None or not is_retryable(attempt.error) or number == max_attempts:
            break
        delay = backoff(number, attempt.error)
        if on_retry is not None:
            on_retry(attempt, delay)  # lets a display mark the partial text as failed before the restart
        sleep(delay)
    return StreamOutcome(attempts)
