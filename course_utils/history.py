"""Chat history: the API is stateless, so every request carries the whole conversation, and someone must keep it.

`Conversation` keeps it. Each `send()` streams one turn and, only when the stream ended normally (a stop reason
arrived), appends the user turn and ONE complete assistant message assembled from the stream. A turn that failed
(an API error, a dropped connection, a stall) or was cancelled leaves the history exactly as it was; the text that
did arrive is handed back on the `TurnFailed` exception, for display, never recorded as if it were the answer.

    chat = Conversation(client, "claude-haiku-4-5", system="Be brief.")
    chat.send("My name is Ada.", on_text=print)
    chat.trim_to_budget(2_000)  # drop the oldest whole exchanges, counted with `count_tokens`
    chat.save("chat.json"); chat = Conversation.load("chat.json", client)

`AsyncConversation` is the same with `await chat.send(...)`; cancelling its task closes the stream, so the server
stops generating (the chat widget's Stop button relies on that).

`cache=True` adds prompt-caching breakpoints to each request (skills prompt-caching.md, "Multi-turn conversations"):
one on the system prompt and one on the last block of the newest user turn, so every turn reads the conversation so
far from the cache and writes only what is new. The stored history never carries the markers. A prefix shorter than
the model's minimum (4096 tokens on Haiku 4.5) is silently not cached.
"""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, cast

import anthropic
from anthropic.types import ContentBlockParam, Message, MessageParam, Usage

__all__ = [
    "FORMAT",
    "AsyncConversation",
    "Conversation",
    "IncompleteStream",
    "TurnFailed",
    "TurnResult",
    "assistant_turn",
    "with_breakpoint",
]

FORMAT = {"format": "course_utils.conversation", "version": 1}
EPHEMERAL = {"type": "ephemeral"}

TextCallback = Callable[[str], object]
TokenCounter = Callable[[list[MessageParam]], "int | Awaitable[int]"]


class IncompleteStream(Exception):
    """The stream ended without a stop reason: the reply is cut short even though no error was raised."""


def snapshot_or_none(stream: Any) -> Message | None:
    """The message streamed so far, or None when the stream broke before its message_start (the SDK asserts)."""
    try:
        return stream.current_message_snapshot
    except Exception:  # no message_start arrived: there is nothing partial to keep
        return None


class TurnFailed(Exception):
    """A turn that did not complete; the history is unchanged and `partial_text` holds what had arrived."""

    def __init__(self, partial_text: str, error: BaseException) -> None:
        super().__init__(f"the turn failed after {len(partial_text)} characters: {type(error).__name__}: {error}")
        self.partial_text = partial_text
        self.error = error


@dataclass(frozen=True)
class TurnResult:
    """One completed turn: the assistant's text and the final message it came from."""

    text: str
    message: Message

    @property
    def stop_reason(self) -> str | None:
        """Why generation stopped: `end_turn`, `max_tokens`, `stop_sequence`, `tool_use`..."""
        return self.message.stop_reason

    @property
    def truncated(self) -> bool:
        """True when the reply was cut off by `max_tokens`: complete as a message, incomplete as an answer."""
        return self.message.stop_reason == "max_tokens"

    @property
    def usage(self) -> Usage:
        """The request's token usage (input tokens include the whole history sent)."""
        return self.message.usage


def assistant_turn(message: Message) -> MessageParam:
    """The ONE history entry for a finished reply: its text as a string, or its blocks when there are others."""
    blocks = [block.model_dump(mode="json", exclude_none=True) for block in message.content]
    if all(block["type"] == "text" for block in blocks):
        return {"role": "assistant", "content": "".join(block["text"] for block in blocks)}
    # Tool calls (with their ids, for the tool_result) and thinking blocks (with their signatures) go back unchanged:
    # a response block dumped to JSON is the request's param for it.
    return {"role": "assistant", "content": cast("list[ContentBlockParam]", blocks)}


def with_breakpoint(message: MessageParam) -> MessageParam:
    """A copy of `message` whose last content block carries `cache_control` (a string becomes one text block)."""
    content = message["content"]
    # Dicts and SDK blocks alike: only the last one is rebuilt.
    blocks: list[Any] = (
        [{"type": "text", "text": content}] if isinstance(content, str) else copy.deepcopy(list(content))
    )
    last = blocks[-1]
    plain = last if isinstance(last, dict) else last.model_dump(exclude_none=True)
    blocks[-1] = {**plain, "cache_control": EPHEMERAL}
    return cast("MessageParam", {**message, "content": blocks})  # the same role, its content as blocks


def _as_blocks(message: MessageParam) -> MessageParam:
    content = message["content"]
    if isinstance(content, str):
        return cast("MessageParam", {**message, "content": [{"type": "text", "text": content}]})  # the same role
    return message


def _is_tool_result_turn(message: MessageParam) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(
        (block.get("type") if isinstance(block, dict) else getattr(block, "type", None)) == "tool_result"
        for block in content
    )


class _History:
    """What both conversations share: the messages, usage per turn, trimming and JSON persistence."""

    def __init__(
        self,
        client: Any,
        model: str,
        *,
        system: str | None = None,
        max_tokens: int = 1024,
        messages: list[MessageParam] | None = None,
        cache: bool = False,
        **options: Any,
    ) -> None:
        self.client = client
        self.model = model
        self.system = system
        self.max_tokens = max_tokens
        self.cache = cache
        self.options = options  # further `messages.stream()` arguments: tools, stop_sequences, temperature...
        self._messages: list[MessageParam] = copy.deepcopy(list(messages or []))
        self._usage: list[Usage] = []

    @property
    def messages(self) -> list[MessageParam]:
        """A copy of the history (editing it does not change the conversation)."""
        return copy.deepcopy(self._messages)

    @property
    def usage_per_turn(self) -> list[Usage]:
        """The token usage of every completed turn, oldest first (kept when old turns are trimmed)."""
        return list(self._usage)

    def _request(self, user_turn: MessageParam) -> dict[str, Any]:
        system: dict[str, Any] = {"system": self.system} if self.system else {}
        messages = [*self._messages, user_turn]
        if self.cache:  # breakpoints on the system prompt and on the newest turn: the whole prefix is reused
            if self.system:
                system = {"system": [{"type": "text", "text": self.system, "cache_control": EPHEMERAL}]}
            # Every turn as blocks, so a turn renders the same whether or not it carries this request's marker.
            messages = [*map(_as_blocks, self._messages), with_breakpoint(user_turn)]
        return {"model": self.model, "max_tokens": self.max_tokens, "messages": messages, **system, **self.options}

    def _record(self, user_turn: MessageParam, message: Message, text: str) -> TurnResult:
        if message.stop_reason is None:
            raise TurnFailed(text, IncompleteStream("the stream ended before message_delta carried a stop reason"))
        # One assignment, so a reader on another thread never sees the user turn without its answer.
        self._messages = [*self._messages, copy.deepcopy(user_turn), assistant_turn(message)]
        self._usage = [*self._usage, message.usage]
        return TurnResult(text=text, message=message)

    def _exchange_starts(self) -> list[int]:
        """Where each exchange begins: a user turn that is not a tool_result (so tool pairs stay together)."""
        return [i for i, m in enumerate(self._messages) if m["role"] == "user" and not _is_tool_result_turn(m)]

    def _drop_oldest_exchange(self) -> bool:
        """Remove the oldest whole exchange if another remains after it; False when only one is left."""
        starts = self._exchange_starts()
        if len(starts) < 2:
            return False
        self._messages = self._messages[starts[1] :]
        return True

    def _count_options(self) -> dict[str, Any]:
        extra = {"system": self.system} if self.system else {}
        return {
            "model": self.model,
            **extra,
            **{k: self.options[k] for k in ("tools", "tool_choice") if k in self.options},
        }

    def save(self, path: str | Path) -> Path:
        """Write the conversation to a versioned JSON file; returns the path."""
        data = {
            **FORMAT,
            "model": self.model,
            "system": self.system,
            "max_tokens": self.max_tokens,
            "cache": self.cache,
            "options": self.options,
            "messages": self._messages,
            "usage_per_turn": [u.model_dump(mode="json", exclude_none=True) for u in self._usage],
        }
        path = Path(path)
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path, client: Any) -> Self:
        """A conversation read back from `save()`'s JSON, talking through `client`."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != FORMAT["format"]:
            raise ValueError(f"{path} is not a saved conversation (no format {FORMAT['format']!r})")
        if data.get("version") != FORMAT["version"]:
            raise ValueError(
                f"{path} has conversation format version {data.get('version')!r}; "
                f"this course_utils reads version {FORMAT['version']}"
            )
        chat = cls(
            client,
            data["model"],
            system=data.get("system"),
            max_tokens=data["max_tokens"],
            messages=data["messages"],
            cache=bool(data.get("cache", False)),
            **data.get("options", {}),
        )
        chat._usage = [Usage.model_validate(u) for u in data.get("usage_per_turn", [])]
        return chat

    def __repr__(self) -> str:
        cache = ", cache=True" if self.cache else ""
        return (
            f"{type(self).__name__}(model={self.model!r}, messages={len(self._messages)}, "
            f"turns={len(self._usage)}{cache})"
        )


class Conversation(_History):
    """A chat history that streams each turn with a sync client and records only complete replies."""

    client: anthropic.Anthropic

    def send(self, content: str | list[Any], *, on_text: TextCallback | None = None) -> TurnResult:
        """Stream one turn; record it only if it completes, else raise `TurnFailed` with the partial text."""
        user_turn: MessageParam = {"role": "user", "content": content}
        pieces: list[str] = []
        try:
            with self.client.messages.stream(**self._request(user_turn)) as stream:
                for text in stream.text_stream:
                    pieces.append(text)
                    if on_text is not None:
                        on_text(text)
                message = stream.get_final_message()
        except Exception as exc:  # API errors, raw httpx2 transport errors, a failing callback: all end the turn
            raise TurnFailed("".join(pieces), exc) from exc
        return self._record(user_turn, message, "".join(pieces))

    def count_tokens(self, messages: list[MessageParam] | None = None) -> int:
        """Input tokens these messages (default: the history) would cost, by the API's `count_tokens`."""
        messages = self._messages if messages is None else messages
        if not messages:
            return 0
        return self.client.messages.count_tokens(messages=messages, **self._count_options()).input_tokens

    def trim_to_budget(self, budget: int, counter: Callable[[list[MessageParam]], int] | None = None) -> int:
        """Drop the oldest whole exchanges until the history fits `budget` input tokens; returns its tokens now."""
        count = counter or self.count_tokens
        tokens = count(self._messages)
        while tokens > budget and self._drop_oldest_exchange():
            tokens = count(self._messages)
        return tokens


class AsyncConversation(_History):
    """The same history for an async client: `await chat.send(...)`; cancelling the task closes the stream."""

    client: anthropic.AsyncAnthropic

    async def send(self, content: str | list[Any], *, on_text: TextCallback | None = None) -> TurnResult:
        """Stream one turn; record it only if it completes, else raise `TurnFailed` (or propagate cancellation)."""
        user_turn: MessageParam = {"role": "user", "content": content}
        pieces: list[str] = []
        try:
            async with self.client.messages.stream(**self._request(user_turn)) as stream:
                async for text in stream.text_stream:
                    pieces.append(text)
                    if on_text is not None:
                        on_text(text)
                message = await stream.get_final_message()
        except Exception as exc:  # CancelledError is not an Exception: cancellation passes through untouched
            raise TurnFailed("".join(pieces), exc) from exc
        return self._record(user_turn, message, "".join(pieces))

    async def count_tokens(self, messages: list[MessageParam] | None = None) -> int:
        """Input tokens these messages (default: the history) would cost, by the API's `count_tokens`."""
        messages = self._messages if messages is None else messages
        if not messages:
            return 0
        counted = await self.client.messages.count_tokens(messages=messages, **self._count_options())
        return counted.input_tokens

    async def trim_to_budget(self, budget: int, counter: TokenCounter | None = None) -> int:
        """Drop the oldest whole exchanges until the history fits `budget` input tokens; returns its tokens now."""
        count = counter or self.count_tokens

        async def counted() -> int:
            value = count(self._messages)
            return await value if inspect.isawaitable(value) else value

        tokens = await counted()
        while tokens > budget and self._drop_oldest_exchange():
            tokens = await counted()
        return tokens
