"""What a deployment of the chat app decides: the model, which models a browser may ask for, the upstream, and (lesson
08) who may call it, how much, with which prompt, and where its state lives."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..mode import DEFAULT_MODEL

# Current, non-deprecated ids only: a deprecated id makes the SDK warn on every request.
ALLOWED_MODELS = ("claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-6")


def _default_model() -> str:
    return os.environ.get("COURSE_MODEL", "").strip() or DEFAULT_MODEL


def tokens_from_env(value: str | None = None) -> tuple[str, ...]:
    """The access tokens in COURSE_APP_TOKEN (or `value`): one, or several separated by commas."""
    raw = os.environ.get("COURSE_APP_TOKEN", "") if value is None else value
    return tuple(token.strip() for token in raw.split(",") if token.strip())


@dataclass(frozen=True)
class ChatSettings:
    """Deployment choices for `create_app`; the defaults are lesson 06's open app for one person on loopback."""

    model: str = field(default_factory=_default_model)
    allowed_models: tuple[str, ...] = ALLOWED_MODELS
    default_max_tokens: int = 1024
    # Upstream: None means the SDK's own resolution (ANTHROPIC_BASE_URL / ANTHROPIC_API_KEY, which setup() sets).
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)  # never in a repr, a log line or a notebook output
    # Retries happen only before the first byte of the answer, where they are invisible to the browser except as
    # a longer wait; nothing after the 200 is ever retried.
    max_retries: int = 2
    connect_timeout: float = 5.0
    # The longest silence tolerated in the middle of a stream before it counts as stalled.
    read_timeout: float = 60.0
    # Seconds of silence in a stream after which the page gets a `: ping` comment, so proxies keep the connection.
    ping_interval: float = 15.0
    # Upstream connections held at once (each open stream holds one), all kept alive for reuse: the SDK's default
    # keeps only 100 alive, so beyond 100 streams each request could pay for a new TCP connection.
    upstream_connections: int = 4096
    # The longest a request waits for a free upstream connection when all are in use, before a 503.
    pool_timeout: float = 5.0
    offline: bool = False  # shown as a badge on the page

    # -- deployment (lesson 08): each is off until set, so lesson 06's app is unchanged ------------------------------
    # Bearer tokens that may call /api/chat; empty means open (allowed on loopback only, see __main__).
    tokens: tuple[str, ...] = field(default=(), repr=False)
    requests_per_minute: int | None = None  # per client: per token, else per address
    tokens_per_day: int | None = None  # output tokens per client per UTC day
    # The server holds each conversation and decides the prompt: the browser sends a conversation id and its new
    # turn only, never `messages` or `system`.
    server_history: bool = False
    system_prompt: str | None = None  # with server_history; None sends no system prompt
    history_turns: int = 40  # turns kept per conversation (the oldest pairs go first)
    history_seconds: float = 24 * 3600.0  # a conversation untouched for this long is forgotten
    redis_url: str | None = field(default=None, repr=False)  # counters, histories and answers shared by workers
    # With Redis, an answer whose reader left keeps generating this long for a reconnect, then its upstream closes.
    resume_grace: float = 30.0
    docs: bool = True  # /api/docs and /api/openapi.json; a deployment turns them off unless asked for

    def models(self) -> tuple[str, ...]:
        """The models a request may name: the allowed ones plus the default."""
        return self.allowed_models if self.model in self.allowed_models else (self.model, *self.allowed_models)

    @property
    def resumable(self) -> bool:
        """True when answers outlive their connection: they are kept in Redis for a reconnect to any worker."""
        return self.redis_url is not None
