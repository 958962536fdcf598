"""What a browser may send to `POST /api/chat`: checked here, so bad input never costs an upstream request."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from .settings import ChatSettings

# Sizes a chat page never needs to exceed; the body limit stops anything bigger before it is even parsed.
MAX_BODY_BYTES = 256 * 1024
MAX_TURNS = 100
MAX_CONTENT_CHARS = 20_000
MAX_TOTAL_CHARS = 100_000
MAX_SYSTEM_CHARS = 4_000
MAX_TOKENS_LIMIT = 4096


def _not_blank(value: str, info: ValidationInfo) -> str:
    if not value.strip():
        raise ValueError(f"{info.field_name} must not be blank")
    return value


# A turn's text, as the page sends it: a string, not blank, of a size a chat needs.
TurnText = Annotated[str, Field(strict=True, min_length=1, max_length=MAX_CONTENT_CHARS), AfterValidator(_not_blank)]


def _allowed_model(model: str | None, settings: ChatSettings) -> str:
    """The model asked for (or the app's default), if this app allows it."""
    model = model or settings.model
    if model not in settings.models():
        raise ValueError(f"model: {model!r} is not available here; choose one of {', '.join(settings.models())}")
    return model


class ChatMessage(BaseModel):
    """One turn of the conversation as the page keeps it: plain text only."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: TurnText


class ChatRequest(BaseModel):
    """The body of `POST /api/chat`."""

    model_config = ConfigDict(extra="forbid")

    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=MAX_TURNS)]
    system: Annotated[str, Field(strict=True, max_length=MAX_SYSTEM_CHARS)] | None = None
    max_tokens: Annotated[int, Field(strict=True, ge=1, le=MAX_TOKENS_LIMIT)] | None = None
    model: Annotated[str, Field(strict=True)] | None = None

    @model_validator(mode="after")
    def _conversation_shape(self) -> ChatRequest:
        if self.messages[-1].role != "user":
            raise ValueError("the last message must come from the user (the model answers the user's turn)")
        total = sum(len(m.content) for m in self.messages) + len(self.system or "")
        if total > MAX_TOTAL_CHARS:
            raise ValueError(f"the conversation is {total} characters long; the limit is {MAX_TOTAL_CHARS}")
        return self

    def to_params(self, settings: ChatSettings) -> dict[str, Any]:
        """The keyword arguments for `client.messages.stream(...)`; the model must be one this app allows."""
        params: dict[str, Any] = {
            "model": _allowed_model(self.model, settings),
            "max_tokens": self.max_tokens or settings.default_max_tokens,
            "messages": [m.model_dump() for m in self.messages],
        }
        if self.system and settings.system_prompt is not None:
            raise ValueError("system: the system prompt is decided by this server")
        if self.system or settings.system_prompt:
            params["system"] = self.system or settings.system_prompt
        return params


CONVERSATION_ID = r"^[A-Za-z0-9_-]{8,64}$"
_SET_BY_SERVER = {
    "system": "system: the system prompt is decided by this server; send only conversation_id and message",
    "messages": "messages: this server keeps the conversation; send its conversation_id and the new message only",
}


class TurnRequest(BaseModel):
    """The body of `POST /api/chat` when the server holds the history: which conversation, and the new user turn."""

    model_config = ConfigDict(extra="forbid")

    conversation_id: Annotated[str, Field(strict=True, pattern=CONVERSATION_ID)]
    message: TurnText
    max_tokens: Annotated[int, Field(strict=True, ge=1, le=MAX_TOKENS_LIMIT)] | None = None
    model: Annotated[str, Field(strict=True)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _nothing_the_server_decides(cls, data: Any) -> Any:
        # Named plainly, not as "extra inputs": a client written for lesson 06 learns what changed and why.
        if isinstance(data, dict):
            for name, message in _SET_BY_SERVER.items():
                if name in data:
                    raise ValueError(message)
        return data

    def to_params(self, settings: ChatSettings, history: list[dict[str, str]]) -> dict[str, Any]:
        """The keyword arguments for the upstream: the stored history, this turn, and the server's prompt."""
        params: dict[str, Any] = {
            "model": _allowed_model(self.model, settings),
            "max_tokens": self.max_tokens or settings.default_max_tokens,
            "messages": [*history, {"role": "user", "content": self.message}],
        }
        if settings.system_prompt:
            params["system"] = settings.system_prompt
        return params
