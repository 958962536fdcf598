"""Build the final Message from raw stream events, the way the `anthropic` SDK does.

This mirrors `accumulate_event` in `anthropic/lib/streaming/_messages.py` (the code behind
`client.messages.stream(...).get_final_message()`), but works on plain dicts so that every
step is visible. The tests check that both give the same message for real recorded streams.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import jiter

from .sse import parse_sse

__all__ = ["MessageAccumulator", "StreamError", "accumulate", "accumulate_sse"]

# Block types whose `input` is streamed as input_json_delta fragments.
_TOOL_INPUT_BLOCKS = ("tool_use", "server_tool_use")

# message_delta usage counts are cumulative totals, so they overwrite. These ones are omitted
# (or null) when not applicable, and then the value from message_start must survive.
_OPTIONAL_USAGE_FIELDS = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "server_tool_use",
    "output_tokens_details",
)


class StreamError(Exception):
    """An `error` event arrived mid-stream, after the HTTP 200 (e.g. `overloaded_error`)."""

    def __init__(self, error: Mapping[str, Any]) -> None:
        """Wrap the event's `error` object, e.g. {"type": "overloaded_error", "message": "Overloaded"}."""
        self.error = dict(error)
        self.type: str | None = self.error.get("type")
        self.message: str | None = self.error.get("message")
        super().__init__(f"{self.type}: {self.message}")


class MessageAccumulator:
    """Folds decoded stream events, one at a time, into a snapshot of the Message so far."""

    def __init__(self) -> None:
        """Start with no message: nothing is accumulated until `message_start` arrives."""
        self.message: dict[str, Any] | None = None
        self.done = False
        self.error: dict[str, Any] | None = None
        # Raw JSON text received so far for each tool block, keyed by block index.
        self._json_bufs: dict[int, str] = {}

    @property
    def text(self) -> str:
        """The text of all text blocks so far, concatenated."""
        if self.message is None:
            return ""
        return "".join(block["text"] for block in self.message["content"] if block["type"] == "text")

    @property
    def stop_reason(self) -> str | None:
        """Why generation stopped ("end_turn", "tool_use", ...), None until message_delta."""
        return None if self.message is None else self.message.get("stop_reason")

    @property
    def usage(self) -> dict[str, Any] | None:
        """Token usage: from message_start, then updated by message_delta."""
        return None if self.message is None else self.message.get("usage")

    def feed(self, event: Mapping[str, Any]) -> None:
        """Apply one decoded event (the JSON `data` of an SSE event) to the snapshot."""
        kind = event.get("type")
        if kind == "error":
            # The server gives up mid-stream; everything received so far stays in `message`.
            self.error = dict(event.get("error") or {})
            raise StreamError(self.error)
        if self.message is None:
            # Like the SDK, ignore anything before message_start: there is nothing to add it to.
            if kind == "message_start":
                # Deep copies, here and below, because we mutate the snapshot as deltas arrive
                # and must not change the caller's event dicts.
                self.message = copy.deepcopy(dict(event["message"]))
            return

        message = self.message
        match kind:
            case "content_block_start":
                # Blocks arrive in order, so the SDK appends and ignores `index`; so do we.
                message["content"].append(copy.deepcopy(dict(event["content_block"])))
            case "content_block_delta":
                index = event["index"]
                block = message["content"][index]  # an unknown index raises IndexError, as in the SDK
                self._apply_delta(index, block, event["delta"])
            case "message_delta":
                delta, usage = event.get("delta", {}), event.get("usage") or {}
                # Overwritten even when absent from the event (then they become None), as in the SDK.
                message["stop_reason"] = delta.get("stop_reason")
                message["stop_sequence"] = delta.get("stop_sequence")
                message["stop_details"] = delta.get("stop_details")
                if delta.get("container") is not None:
                    message["container"] = delta["container"]
                message_usage = message.setdefault("usage", {})
                message_usage["output_tokens"] = usage.get("output_tokens")
                for field in _OPTIONAL_USAGE_FIELDS:
                    if usage.get(field) is not None:
                        message_usage[field] = usage[field]
            case "message_stop":
                self.done = True
            # content_block_stop, ping, a second message_start and unknown future event
            # types change nothing.

    def _apply_delta(self, index: int, block: dict[str, Any], delta: Mapping[str, Any]) -> None:
        """Apply one delta to content block `index`; a delta that doesn't fit the block is ignored."""
        match delta.get("type"), block.get("type"):
            case "text_delta", "text":
                block["text"] += delta["text"]
            case "input_json_delta", block_type if block_type in _TOOL_INPUT_BLOCKS:
                # The fragments split keys and values anywhere, so we keep the whole text and
                # re-parse it each time; partial mode turns a valid prefix into the dict so far
                # (an unfinished string is left out), so `input` is always a usable snapshot.
                buf = self._json_bufs.get(index, "") + delta["partial_json"]
                if buf:
                    try:
                        block["input"] = jiter.from_json(buf.encode(), partial_mode=True)
                    except ValueError as exc:
                        raise ValueError(f"Unable to parse tool input JSON: {exc}. JSON: {buf}") from exc
                self._json_bufs[index] = buf
            case "citations_delta", "text":
                if not block.get("citations"):  # the block starts with "citations": null, or none at all
                    block["citations"] = []
                block["citations"].append(delta["citation"])
            case "thinking_delta", "thinking":
                block["thinking"] += delta["thinking"]
            case "signature_delta", "thinking":
                block["signature"] = delta["signature"]  # sent whole, once: it replaces


def accumulate(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Fold a whole sequence of decoded events and return the final message dict."""
    accumulator = MessageAccumulator()
    for event in events:
        accumulator.feed(event)
    if accumulator.message is None:
        raise ValueError("the stream contained no message_start event")
    return accumulator.message


def accumulate_sse(body: bytes) -> dict[str, Any]:
    """Parse a raw SSE response body and return the final message dict."""
    # The SDK's Stream skips pings, events without an `event:` line and empty data, and types
    # each event by its JSON "type" rather than by its SSE name. We filter the same way.
    return accumulate(
        sse.json() for sse in parse_sse([body]) if sse.event is not None and sse.event != "ping" and sse.data
    )
