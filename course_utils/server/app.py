"""The chat app: `POST /api/chat` streams an answer as Server-Sent Events, `GET /` serves the chat page.

    app = create_app()                                    # upstream from the environment (setup() sets it)
    app = create_app(client=AsyncAnthropic(base_url=...)) # or any client you own, e.g. pointed at a simulator
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anthropic
import httpx2
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from .errors import ChatError, error_body
from .middleware import BodyLimit, QuietDisconnects
from .relay import EVENT_STREAM_RESPONSE, EventStreamResponse, UpstreamResponse, relay
from .schema import MAX_BODY_BYTES, MAX_TOKENS_LIMIT
from .settings import ChatSettings

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


def upstream_client(settings: ChatSettings) -> anthropic.AsyncAnthropic:
    """The one SDK client of a process, with retries, timeouts and a connection pool chosen for a relay."""
    timeout = anthropic.Timeout(settings.read_timeout, connect=settings.connect_timeout, pool=settings.pool_timeout)
    # The SDK's default pool keeps 100 connections alive (1,000 at most); a relay holds one per open stream.
    limits = httpx2.Limits(max_connections=settings.upstream_connections,
                           max_keepalive_connections=settings.upstream_connections)
    return anthropic.AsyncAnthropic(base_url=settings.base_url, api_key=settings.api_key,
                                    max_retries=settings.max_retries, timeout=timeout,
                                    http_client=anthropic.DefaultAsyncHttpxClient(limits=limits, timeout=timeout))


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
        try:
            yield
        finally:
            if client is None:
                await app.state.client.close()

    app = FastAPI(title="Streaming with Claude: chat", lifespan=lifespan, docs_url="/api/docs", redoc_url=None,
                  openapi_url="/api/openapi.json")
    app.state.settings = settings

    @app.exception_handler(ChatError)
    async def _chat_error(request: Request, exc: ChatError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return describe_validation(exc, request.headers.get("content-type", "")).response()

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        kinds = {404: "not_found_error", 405: "invalid_request_error", 413: "request_too_large"}
        return ChatError(exc.status_code, kinds.get(exc.status_code, "invalid_request_error"), str(exc.detail),
                         dict(exc.headers or {})).response()

    @app.post("/api/chat", response_class=EventStreamResponse,
              responses={200: EVENT_STREAM_RESPONSE, **_ERROR_RESPONSES})
    async def chat(upstream: UpstreamResponse) -> EventStreamResponse:
        """Stream the answer to the conversation as `text` events, then one `done` or `error` event."""
        return EventStreamResponse(relay(upstream), ping_interval=settings.ping_interval)

    @app.get("/api/config")
    async def config() -> dict[str, Any]:
        """What the page needs to know: the models it may pick and the token limits."""
        return {"model": settings.model, "models": list(settings.models()), "offline": settings.offline,
                "max_tokens": {"default": settings.default_max_tokens, "max": MAX_TOKENS_LIMIT}}

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
