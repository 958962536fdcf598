"""The chat app: `POST /api/chat` streams an answer as Server-Sent Events, `GET /` serves the chat page.

app = create_app()                                    # upstream from the environment (setup() sets it)
app = create_app(client=AsyncAnthropic(base_url=...)) # or any client you own, e.g. pointed at a simulator
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import anthropic
import httpx2
from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from httpx2._utils import get_environment_proxies
from starlette.exceptions import HTTPException

from .answers import Answers, parse_last_event_id
from .deploy import Owner, Turn, open_held_turn, open_turn, open_upstream_for, upstream_dependency
from .errors import ChatError, error_body
from .middleware import BodyLimit, QuietDisconnects
from .relay import EVENT_STREAM_RESPONSE, EventStreamResponse, Upstream, UpstreamResponse, log, relay
from .schema import MAX_BODY_BYTES, MAX_TOKENS_LIMIT
from .settings import ChatSettings
from .state import RedisState, make_state
from .transport import UpstreamTransport

STATIC = Path(__file__).with_name("static")
MAX_PROBLEMS = 5  # problems named in one 422: enough to fix a body, short enough to read (and to send)

_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {"application/json": {"example": error_body(kind, text)}}}
    for status, kind, text in [
        (400, "invalid_request_error", "The body is not valid JSON."),
        (413, "request_too_large", "The body is larger than the limit."),
        (415, "invalid_request_error", "Send the body as JSON, with Content-Type: application/json."),
        (422, "invalid_request_error", "messages.0.role: Input should be 'user' or 'assistant'"),
        (429, "rate_limit_error", "Too many requests right now."),
        (502, "api_error", "The model had an internal error."),
        (503, "overloaded_error", "The model is overloaded right now."),
        (504, "timeout_error", "The model did not answer in time."),
    ]
}
# A deployment's endpoint can also refuse for lack of a token, or while the conversation is still answering.
_DEPLOYED_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_ERROR_RESPONSES,
    **{
        status: {"description": text, "content": {"application/json": {"example": error_body(kind, text)}}}
        for status, kind, text in [
            (401, "authentication_error", "This chat needs an access token: send `Authorization: Bearer <token>`."),
            (409, "conflict_error", "This conversation is still answering; wait for it or stop it."),
        ]
    },
}


def upstream_client(settings: ChatSettings) -> anthropic.AsyncAnthropic:
    """The one SDK client of a process, with retries, timeouts and a connection pool chosen for a relay."""
    timeout = anthropic.Timeout(settings.read_timeout, connect=settings.connect_timeout, pool=settings.pool_timeout)
    # The SDK's default pool keeps 100 connections alive (1,000 at most); a relay holds one per open stream.
    limits = httpx2.Limits(
        max_connections=settings.upstream_connections, max_keepalive_connections=settings.upstream_connections
    )
    # The SDK and httpx2 as usual, on the relay's own HTTP/1.1 transport (transport.py says why); a proxy named in
    # the environment is reached through httpx2's own transport, as it would be without this one.
    transport = UpstreamTransport(settings.upstream_connections, settings.upstream_connections)
    proxies = {
        pattern: None if proxy is None else httpx2.AsyncHTTPTransport(proxy=proxy, limits=limits)
        for pattern, proxy in get_environment_proxies().items()
    }
    http = anthropic.DefaultAsyncHttpxClient(transport=transport, mounts=proxies, timeout=timeout)
    return anthropic.AsyncAnthropic(
        base_url=settings.base_url,
        api_key=settings.api_key,
        max_retries=settings.max_retries,
        timeout=timeout,
        http_client=http,
    )


def describe_validation(exc: RequestValidationError, content_type: str) -> ChatError:
    """A 4xx that names each problem as `field.path: what is wrong`."""
    if "json" not in content_type:
        return ChatError(415, "invalid_request_error", "Send the body as JSON, with Content-Type: application/json.")
    errors = exc.errors()
    if any(e["type"] == "json_invalid" for e in errors):
        return ChatError(400, "invalid_request_error", "The body is not valid JSON.")
    problems = []
    for error in errors:
        where = ".".join(str(part) for part in error["loc"] if part != "body")
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    if len(problems) > MAX_PROBLEMS:
        more = len(problems) - MAX_PROBLEMS
        problems[MAX_PROBLEMS:] = [f"and {more} more problem{'s' if more > 1 else ''}"]
    return ChatError(422, "invalid_request_error", "; ".join(problems))


def create_app(settings: ChatSettings | None = None, *, client: anthropic.AsyncAnthropic | None = None) -> FastAPI:
    """The chat app; pass `client` to choose the upstream yourself (you then close it), else one is made per process."""
    settings = settings or ChatSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One client, so one connection pool, for every request this process serves.
        app.state.client = client or upstream_client(settings)
        app.state.upstream = Upstream(app.state.client)
        # Limits and conversations: in this process, or in Redis for every worker; made here, in the worker's loop.
        app.state.store = make_state(settings.redis_url, settings.history_turns, settings.history_seconds)
        answers = None
        if settings.resumable and isinstance(app.state.store, RedisState):
            answers = app.state.answers = Answers(app.state.store.redis, settings.resume_grace)
            await answers.start()
        try:
            yield
        finally:
            if answers is not None:
                await answers.close()
            await app.state.store.close()
            if client is None:
                await app.state.client.close()

    docs = settings.docs
    app = FastAPI(
        title="Streaming with Claude: chat",
        lifespan=lifespan,
        docs_url="/api/docs" if docs else None,
        redoc_url=None,
        openapi_url="/api/openapi.json" if docs else None,
    )
    app.state.settings = settings

    @app.exception_handler(ChatError)
    async def _chat_error(request: Request, exc: ChatError) -> JSONResponse:
        return exc.response()

    if settings.redis_url:
        redis_errors = importlib.import_module("redis.exceptions")

        @app.exception_handler(redis_errors.RedisError)
        async def _redis_down(request: Request, exc: Exception) -> JSONResponse:
            log.error("Redis failed: %s", type(exc).__name__)
            return ChatError(
                503,
                "overloaded_error",
                "The server cannot reach its state store right now. Try again in a moment.",
                {"retry-after": "5"},
            ).response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return describe_validation(exc, request.headers.get("content-type", "")).response()

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        kinds = {404: "not_found_error", 405: "invalid_request_error", 413: "request_too_large"}
        return ChatError(
            exc.status_code,
            kinds.get(exc.status_code, "invalid_request_error"),
            str(exc.detail),
            dict(exc.headers or {}),
        ).response()

    if not deployed(settings):

        @app.post(
            "/api/chat", response_class=EventStreamResponse, responses={200: EVENT_STREAM_RESPONSE, **_ERROR_RESPONSES}
        )
        async def chat(upstream: UpstreamResponse) -> EventStreamResponse:
            """Stream the answer to the conversation as `text` events, then one `done` or `error` event."""
            return EventStreamResponse(relay(upstream), ping_interval=settings.ping_interval)
    else:
        add_deployed_routes(app, settings)

    @app.get("/api/config")
    async def config() -> dict[str, Any]:
        """What the page needs to know: the models it may pick and the token limits."""
        return {
            "model": settings.model,
            "models": list(settings.models()),
            "offline": settings.offline,
            "max_tokens": {"default": settings.default_max_tokens, "max": MAX_TOKENS_LIMIT},
            # How to talk to this deployment: whether to ask for a token, who keeps the history, resuming.
            "auth": bool(settings.tokens),
            "history": "server" if settings.server_history else "client",
            "resumable": settings.resumable,
        }

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        """Liveness for a load balancer: answers without touching the upstream."""
        return {"ok": True}

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(QuietDisconnects)
    return app


def deployed(settings: ChatSettings) -> bool:
    """True when any deployment setting is on; with none, `/api/chat` is exactly lesson 06's."""
    return bool(
        settings.tokens
        or settings.requests_per_minute is not None
        or settings.tokens_per_day is not None
        or settings.server_history
        or settings.system_prompt is not None
        or settings.redis_url
    )


def add_deployed_routes(app: FastAPI, settings: ChatSettings) -> None:
    """`POST /api/chat` behind the deployment's checks; with Redis, answers that survive their connection."""
    prepare = open_held_turn if settings.server_history else open_turn
    responses = {200: EVENT_STREAM_RESPONSE, **_DEPLOYED_RESPONSES}

    if not settings.resumable:
        opened = Depends(upstream_dependency(prepare))  # a default, not Annotated: the annotations are strings here

        @app.post("/api/chat", response_class=EventStreamResponse, responses=responses)
        async def chat(turn: Turn = opened) -> EventStreamResponse:
            """Stream the answer as `text` events, then one `done` or `error` event; disconnecting stops it."""
            return EventStreamResponse(
                relay(turn.response, turn.outcome),  # type: ignore[arg-type]
                ping_interval=settings.ping_interval,
            )

        return

    @app.post("/api/chat", response_class=EventStreamResponse, responses=responses)
    async def chat_resumable(request: Request, turn: Turn = Depends(prepare)) -> EventStreamResponse:
        """Stream the answer, every event with an `id`; header `x-answer-id` names it for a resume or a cancel."""
        answers: Answers = request.app.state.answers
        async with AsyncExitStack() as stack:
            turn.response = await open_upstream_for(turn, request, stack)
            answer = await answers.begin(turn, stack)  # the producer owns the upstream from here on
        return EventStreamResponse(
            answers.read(answer), ping_interval=settings.ping_interval, headers={"x-answer-id": answer}
        )

    @app.get("/api/answers/{answer}", response_class=EventStreamResponse, responses=responses)
    async def resume(
        answer: str, request: Request, client: Owner, last_event_id: Annotated[str | None, Header()] = None
    ) -> EventStreamResponse:
        """The rest of an answer after `Last-Event-ID`, from any worker: never a second generation."""
        answers: Answers = request.app.state.answers
        await answers.owned(answer, client)
        after = parse_last_event_id(answer, last_event_id)
        return EventStreamResponse(
            answers.read(answer, after), ping_interval=settings.ping_interval, headers={"x-answer-id": answer}
        )

    @app.post("/api/answers/{answer}/cancel")
    async def cancel(answer: str, request: Request, client: Owner) -> dict[str, Any]:
        """Stop an answer now: its upstream closes on whichever worker generates it."""
        answers: Answers = request.app.state.answers
        await answers.owned(answer, client)
        await answers.cancel(answer)
        return {"answer_id": answer, "cancelled": True}
