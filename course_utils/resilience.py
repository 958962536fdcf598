"""Streaming that survives failures: bounded retries with jittered backoff, restarting or continuing the answer.

The SDK retries only *before* the HTTP 200 (429, 5xx, 529, connection errors). Everything after it, an `error`
event, a dropped connection (raw `httpx2.RemoteProtocolError`), a stall past the read timeout (raw
`httpx2.ReadTimeout`), reaches your code once, with part of the answer already shown. `stream_with_retries` handles
those in one of two ways, and ends with one clear outcome:

    outcome = stream_with_retries(client, model=..., max_tokens=..., messages=[...], on_text=show,
                                  recovery="continue")   # or "restart" (the default)
    outcome.status   # "complete", "truncated" (max_tokens), "refused" (stop_reason refusal) or "failed"
    outcome.text     # the answer: one attempt's text, or the partial text and its continuation, joined

- `recovery="restart"`: each retry is the same request from scratch; the partial text of every failed attempt is
  kept for display, never stitched to the new answer, which is then one complete message.
- `recovery="continue"`: the official docs' "error recovery" (streaming guide): the partial text is kept and the
  next request asks for the rest. On models that accept an assistant prefill (Haiku 4.5 and the 4.5 generation) the
  partial text goes back as the start of the assistant turn; on models that reject prefill (Sonnet 4.6, Opus 4.6
  and later: a 400) and whenever thinking is on, it goes back as an assistant turn followed by a user turn asking
  to continue (skills model-migration.md). The choice is per model, from the course's catalogue
  (`course_utils/simulator/models.json`; the Models API does not report prefill support); an unknown model gets the
  user turn, which every model accepts. A partial `tool_use` or thinking block cannot be continued (docs: resume
  from the most recent text block only), so such an attempt is restarted instead.

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

from .history import IncompleteStream, snapshot_or_none

__all__ = [
    "CONTINUE_PROMPT",
    "Attempt",
    "Backoff",
    "StreamOutcome",
    "can_continue",
    "continuation_messages",
    "is_retryable",
    "rate_limits",
    "retry_after",
    "stream_with_retries",
    "supports_prefill",
]

# Mid-stream `error` events arrive on an HTTP 200, so the status cannot say whether to retry; the error type can.
RETRYABLE_STREAM_ERRORS = {"overloaded_error", "api_error"}
# Transport failures worth another attempt (not programming errors such as an unsupported URL scheme).
RETRYABLE_TRANSPORT = (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError, IncompleteStream)

Status = Literal["complete", "truncated", "refused", "failed"]
Recovery = Literal["restart", "continue"]

# The user turn for models that reject prefill, worded after skills model-migration.md ("Continuing an interrupted
# response"); {tail} is the end of the partial text, so the model knows where to pick up.
CONTINUE_PROMPT = (
    'Your previous response was interrupted and ended with: "{tail}". Continue from exactly '
    "there, without repeating anything."
)
TAIL_CHARACTERS = 200


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


def rate_limits(headers: Any) -> dict[str, str]:
    """The `anthropic-ratelimit-*` headers of a response (or an error's response), without the common prefix."""
    prefix = "anthropic-ratelimit-"
    return {name[len(prefix) :]: value for name, value in dict(headers or {}).items() if name.startswith(prefix)}


def supports_prefill(model: str) -> bool:
    """Whether `model` continues a final assistant turn (prefill), by the course's catalogue; unknown: False."""
    from .simulator.models import spec  # the catalogue lives with the simulator; imported late to keep this light

    found = spec(model)
    return bool(found is not None and found.prefill)


def can_continue(message: Message | None) -> bool:
    """Whether a failed attempt's snapshot can be continued: some text, and no tool_use or thinking block started."""
    if message is None or not message.content:
        return False
    last = message.content[-1]
    # Thinking before the text is dropped (it is optional in earlier turns); a started tool call cannot be finished.
    return (
        last.type == "text"
        and bool(last.text)
        and all(block.type in ("text", "thinking", "redacted_thinking") for block in message.content)
    )


def continuation_messages(messages: list[Any], partial: str, *, prefill: bool) -> list[Any]:
    """The messages that ask for the rest of `partial`: a prefilled assistant turn, or a user turn asking to go on."""
    # The API rejects a final assistant turn that ends in whitespace; what was shown is kept by the caller.
    kept = partial.rstrip()
    if prefill:
        return [*messages, {"role": "assistant", "content": kept}]
    tail = kept[-TAIL_CHARACTERS:]
    return [
        *messages,
        {"role": "assistant", "content": kept},
        {"role": "user", "content": CONTINUE_PROMPT.format(tail=tail)},
    ]


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
    continues: bool = False  # True when this attempt asked for the rest of the previous attempts' text
    snapshot: Message | None = None  # what had arrived, as a message, when the attempt failed

    @property
    def seconds(self) -> float:
        """How long the attempt took."""
        return self.ended - self.started


@dataclass(frozen=True)
class StreamOutcome:
    """How a retried stream ended, with every attempt kept for display."""

    attempts: list[Attempt] = field(default_factory=list)
    recovery: Recovery = "restart"

    @property
    def message(self) -> Message | None:
        """The final message of the attempt that finished, or None if none did."""
        return self.attempts[-1].message if self.attempts else None

    @property
    def status(self) -> Status:
        """`complete`, `truncated` (finished, but cut off by `max_tokens`) or `failed`."""
        if self.message is None:
            return "failed"
        if self.message.stop_reason == "refusal":
            return "refused"
        return "truncated" if self.message.stop_reason == "max_tokens" else "complete"

    @property
    def text(self) -> str:
        """The answer's text when an attempt finished (with the partial texts it continued); empty when all failed."""
        if self.message is None:
            return ""
        return "".join(a.text for a in self._chain())

    @property
    def continued(self) -> bool:
        """True when the answer is partial text plus its continuation: more than one generation, stitched."""
        return self.message is not None and len(self._chain()) > 1

    def _chain(self) -> list[Attempt]:
        """The attempts whose texts make the answer: the last one and the failed ones it continued."""
        chain = [self.attempts[-1]]
        for attempt in reversed(self.attempts[:-1]):
            if not chain[0].continues:
                break
            chain.insert(0, attempt)
        return chain

    @property
    def input_tokens(self) -> int:
        """Input tokens of the attempts that finished or reported usage (a continuation resends the partial text)."""
        return sum(m.usage.input_tokens for a in self.attempts if (m := a.message or a.snapshot) is not None)

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
        how = {"truncated": "truncated by max_tokens", "refused": "refused", "complete": "complete"}[self.status]
        joined = ", continued" if self.continued else ""
        return f"{how} after {tries}{joined}"


TextCallback = Callable[[str], object]
RetryCallback = Callable[[Attempt, float], object]


Seam = Literal["none", "strip", "space"]


def _seam(kept: str, prefill: bool) -> Seam:
    """How the first piece of a continuation must meet the text already shown."""
    if kept != kept.rstrip():
        return "strip"  # the shown text ends in whitespace, which the request could not carry
    # Asked for in a user turn, the rest arrives as a new message, without the space a continued sentence needs.
    return "none" if prefill else "space"


def _join(first: str, seam: Seam) -> str:
    if seam == "strip":
        return first.lstrip()
    if seam == "space" and first[:1].isalnum():
        return " " + first
    return first


def _attempt(
    client: anthropic.Anthropic,
    number: int,
    request: dict[str, Any],
    on_text: TextCallback | None,
    continues: bool = False,
    seam: Seam = "none",
) -> Attempt:
    """Run one streaming request to its end, whatever that end is."""
    started = time.monotonic()
    pieces: list[str] = []
    message: Message | None = None
    snapshot: Message | None = None
    error: BaseException | None = None
    try:
        with client.messages.stream(**request) as stream:
            try:
                for text in stream.text_stream:
                    if not pieces:
                        text = _join(text, seam)
                        if not text:
                            continue
                    pieces.append(text)
                    if on_text is not None:
                        on_text(text)
                message = stream.get_final_message()
            finally:
                snapshot = snapshot_or_none(stream) if message is None else None
        if message.stop_reason is None:
            message, error = None, IncompleteStream("the stream ended before message_delta carried a stop reason")
            snapshot = snapshot or snapshot_or_none(stream)
    except Exception as exc:  # API errors and the raw httpx2 ones alike; KeyboardInterrupt still stops everything
        error = exc
    return Attempt(number, "".join(pieces), message, error, started, time.monotonic(), continues, snapshot)


def stream_with_retries(
    client: anthropic.Anthropic,
    *,
    max_attempts: int = 3,
    backoff: Callable[[int, BaseException], float] = Backoff(),
    on_text: TextCallback | None = None,
    on_retry: RetryCallback | None = None,
    sleep: Callable[[float], object] = time.sleep,
    recovery: Recovery = "restart",
    **request: Any,
) -> StreamOutcome:
    """Stream `messages.stream(**request)`, retrying failures by restarting or continuing, at most `max_attempts`."""
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    if recovery not in ("restart", "continue"):
        raise ValueError(f"recovery must be 'restart' or 'continue', got {recovery!r}")
    # Prefill is refused with thinking on, as well as on models that reject it outright.
    prefill = supports_prefill(request.get("model", "")) and not _thinks(request)
    attempts: list[Attempt] = []
    kept = ""  # the text so far of the answer being continued
    next_request, continues = request, False
    for number in range(1, max_attempts + 1):
        attempt = _attempt(
            client, number, next_request, on_text, continues, _seam(kept, prefill) if continues and kept else "none"
        )
        attempts.append(attempt)
        if attempt.error is None or not is_retryable(attempt.error) or number == max_attempts:
            break
        kept = kept + attempt.text if continues else attempt.text
        continues = (
            recovery == "continue"
            and bool(kept.strip())
            and (can_continue(attempt.snapshot) or (attempt.continues and not attempt.text))
        )
        if continues:
            next_request = {**request, "messages": continuation_messages(request["messages"], kept, prefill=prefill)}
        else:
            next_request, kept = request, ""
        delay = backoff(number, attempt.error)
        if on_retry is not None:
            on_retry(attempt, delay)  # lets a display mark the partial text as failed (or to be continued)
        sleep(delay)
    return StreamOutcome(attempts, recovery)


def _thinks(request: dict[str, Any]) -> bool:
    """Whether the request asks for thinking (on models that think by default, omitting it counts too)."""
    thinking = request.get("thinking")
    if thinking is not None:
        return thinking.get("type") != "disabled"
    from .simulator.models import spec

    found = spec(request.get("model", ""))
    return found is not None and found.thinking_default not in (None, "disabled")
