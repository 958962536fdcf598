"""Who may ask, how much, and what is kept (lesson 08): the checks every request passes before any upstream call.

Order matters and is the same for every request: the token (401), the request rate (429), the body (422), the day's
output tokens (429), the conversation (409); only then does the upstream hear of it. Each refusal is JSON in the app's
usual error shape, and none costs an upstream request.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Annotated, Any

import anthropic
from anthropic._response import AsyncAPIResponse
from fastapi import Depends, Request

from .errors import ChatError, from_upstream
from .relay import Outcome, Upstream, log
from .schema import ChatRequest, TurnRequest
from .settings import ChatSettings
from .state import DAY, State, retry_after

# How long a conversation stays claimed by one answer at most, even if its worker dies without releasing it.
TURN_LOCK_SECONDS = 600.0


def client_key(request: Request, settings: ChatSettings) -> str:
    """Who is asking, for the limits: the token's digest when there is a token, else the address."""
    if settings.tokens:
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        return "t:" + hashlib.sha256(token.encode()).hexdigest()[:16]  # never the token itself, in memory or Redis
    # Behind a proxy this is the proxy's address unless uvicorn trusts its X-Forwarded-For (--forwarded-allow-ips).
    return "a:" + (request.client.host if request.client else "unknown")


def authenticate(request: Request, settings: ChatSettings) -> None:
    """Refuse with 401 unless the request carries `Authorization: Bearer <one of the tokens>`."""
    if not settings.tokens:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    # compare_digest: the time taken must not tell how much of a guessed token was right.
    if scheme.lower() != "bearer" or not any(
        hmac.compare_digest(token.strip().encode(), t.encode()) for t in settings.tokens
    ):
        message = (
            "This chat needs an access token: send `Authorization: Bearer <token>`."
            if not header
            else "That access token is not valid here."
        )
        raise ChatError(401, "authentication_error", message, {"www-authenticate": "Bearer"})


async def authorized(request: Request) -> str:
    """Dependency for resuming and stopping an answer: authenticate and return the client's key, counting nothing
    (a reconnect or a Stop must never be refused for the rate: neither starts a generation)."""
    settings: ChatSettings = request.app.state.settings
    authenticate(request, settings)
    return client_key(request, settings)


async def guard(request: Request) -> str:
    """Dependency: authenticate, count the request against the client's minute, and return the client's key."""
    settings: ChatSettings = request.app.state.settings
    client = await authorized(request)
    if settings.requests_per_minute is not None:
        wait = await request.app.state.store.count_request(client, settings.requests_per_minute)
        if wait is not None:
            raise ChatError(
                429,
                "rate_limit_error",
                f"You are over the limit of {settings.requests_per_minute} requests per minute. Try again in {wait} s.",
                {"retry-after": str(wait)},
            )
    return client


Client = Annotated[str, Depends(guard)]
Owner = Annotated[str, Depends(authorized)]


@dataclass
class Turn:
    """One answer being prepared: its upstream parameters, what was reserved for it, and what to keep afterwards."""

    client: str
    params: dict[str, Any]
    store: State
    conversation: str | None = None  # server-held history only
    user_turn: dict[str, str] | None = None
    reserved: int = 0  # output tokens set aside from today's quota
    outcome: Outcome = field(default_factory=Outcome)
    response: AsyncAPIResponse[Any] | None = None  # the upstream, once open
    _finished: bool = False

    async def finish(self) -> None:
        """Settle the tokens and store the turn if its answer completed; a failed turn leaves no trace. Idempotent."""
        if self._finished:
            return
        self._finished = True
        used = self.outcome.usage["output_tokens"] or self.outcome.deltas  # a cut stream: at least one per delta
        if self.reserved:
            await self.store.settle_tokens(self.client, self.reserved, min(used, self.reserved))
        if self.conversation is not None:
            answer = "".join(self.outcome.texts)
            kept = (
                [self.user_turn, {"role": "assistant", "content": answer}]
                if self.outcome.completed and answer
                else None
            )
            await self.store.end_turn(self.client, self.conversation, kept)  # type: ignore[arg-type]


async def _reserve(turn: Turn, settings: ChatSettings) -> None:
    """Cap max_tokens at what is left of the client's day; 429 when nothing is."""
    if settings.tokens_per_day is None:
        return
    want = turn.params["max_tokens"]
    granted = await turn.store.reserve_tokens(turn.client, want, settings.tokens_per_day)
    if granted == 0:
        wait = retry_after(DAY, time.time())
        raise ChatError(
            429,
            "rate_limit_error",
            f"You used today's {settings.tokens_per_day} output tokens. They renew at midnight UTC, in {wait} s.",
            {"retry-after": str(wait)},
        )
    turn.reserved = granted
    if granted < want:
        # The upstream stops exactly at the quota, so it is never overspent; the relay then says why it stopped.
        turn.params["max_tokens"] = granted
        turn.outcome.quota_cut = (
            f"This answer reached your daily limit of {settings.tokens_per_day} output tokens "
            "and was cut there; the limit renews at midnight UTC."
        )


async def open_turn(chat: ChatRequest, request: Request, client: Client) -> Turn:
    """Dependency for lesson 06's body (the browser sends the whole conversation): the turn to answer."""
    settings: ChatSettings = request.app.state.settings
    try:
        params = chat.to_params(settings)
    except ValueError as exc:
        raise ChatError(422, "invalid_request_error", str(exc)) from None
    turn = Turn(client, params, request.app.state.store)
    await _reserve(turn, settings)
    return turn


async def open_held_turn(body: TurnRequest, request: Request, client: Client) -> Turn:
    """Dependency for the server-held history: the stored turns plus the new one, the conversation claimed."""
    settings: ChatSettings = request.app.state.settings
    store: State = request.app.state.store
    history = await store.history(client, body.conversation_id)
    try:
        params = body.to_params(settings, history)
    except ValueError as exc:
        raise ChatError(422, "invalid_request_error", str(exc)) from None
    turn = Turn(client, params, store, user_turn={"role": "user", "content": body.message})
    turn.outcome.keep_text = True
    await _reserve(turn, settings)
    if not await store.begin_turn(client, body.conversation_id, TURN_LOCK_SECONDS):
        await turn.finish()
        raise ChatError(409, "conflict_error", "This conversation is still answering; wait for it or stop it.")
    turn.conversation = body.conversation_id
    return turn


async def open_upstream_for(turn: Turn, request: Request, stack: AsyncExitStack) -> AsyncAPIResponse[Any]:
    """Send the turn upstream inside `stack` (which then owns the response); a failure finishes the turn and raises."""
    upstream: Upstream = request.app.state.upstream
    try:
        # Entering sends the request and waits for the status line, after the SDK's retries; the body stays bytes.
        return await stack.enter_async_context(upstream.stream(turn.params))
    except anthropic.APIError as exc:
        log.warning("upstream failed before the stream: %s", type(exc).__name__)
        await turn.finish()
        raise from_upstream(exc) from None
    except BaseException:
        await turn.finish()
        raise


def upstream_dependency(prepare: Callable[..., Awaitable[Turn]]) -> Callable[..., AsyncIterator[Turn]]:
    """A yield dependency like lesson 06's `open_upstream`, for a deployment: the turn, its upstream open, and the
    turn finished (tokens settled, history stored or not) whenever and however the response ends."""

    # A default, not Annotated: with `from __future__ import annotations` FastAPI cannot see a closure's names.
    async def open_upstream(request: Request, turn: Turn = Depends(prepare)) -> AsyncIterator[Turn]:
        async with AsyncExitStack() as stack:
            turn.response = await open_upstream_for(turn, request, stack)
            try:
                yield turn
            finally:
                await stack.aclose()  # the upstream first: nothing more is read from it
                await turn.finish()

    return open_upstream
