"""The Messages API's wire shapes: ids, headers, error bodies and the stream's events, as the real API sends them."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring  # json.dumps's own string encoder
from typing import Any

_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def make_id(prefix: str, seed: str) -> str:
    """An id shaped like the API's (`msg_01…`, `toolu_01…`, `req_01…`), derived from a seed so it is reproducible."""
    digest = hashlib.sha256(seed.encode()).digest()
    return prefix + "01" + "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:22])


def api_error_body(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    """The JSON body of every API error, before or during a stream."""
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}


def ratelimit_headers(now: datetime | None = None) -> dict[str, str]:
    """The `anthropic-ratelimit-*` headers; the SDK ignores them, but a faithful server sends them."""
    now = now or datetime.now(UTC)
    reset = (now + timedelta(seconds=60)).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    limits = {"requests": 4000, "tokens": 2_000_000, "input-tokens": 1_600_000, "output-tokens": 400_000}
    headers: dict[str, str] = {}
    for name, limit in limits.items():
        headers[f"anthropic-ratelimit-{name}-limit"] = str(limit)
        headers[f"anthropic-ratelimit-{name}-remaining"] = str(limit - 1)
        headers[f"anthropic-ratelimit-{name}-reset"] = reset
    return headers


def usage(
    input_tokens: int,
    output_tokens: int,
    *,
    cache_creation_input_tokens: int = 0,
    cache_read_input_tokens: int = 0,
    ephemeral_5m_input_tokens: int = 0,
    ephemeral_1h_input_tokens: int = 0,
    thinking_tokens: int | None = None,
) -> dict[str, Any]:
    """A full usage object as in a Message; `input_tokens` is the part of the prompt not read from or written
    to the cache."""
    result: dict[str, Any] = {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": cache_creation_input_tokens,
        "cache_read_input_tokens": cache_read_input_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": ephemeral_5m_input_tokens,
            "ephemeral_1h_input_tokens": ephemeral_1h_input_tokens,
        },
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }
    if thinking_tokens is not None:
        result["output_tokens_details"] = {"thinking_tokens": thinking_tokens}
    return result


def message(
    *,
    msg_id: str,
    model: str,
    content: list[dict[str, Any]],
    stop_reason: str | None,
    stop_sequence: str | None,
    usage: dict[str, Any],
) -> dict[str, Any]:
    """A Message object in the API's key order."""
    return {
        "model": model,
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage,
    }


def sse(event: str, data: dict[str, Any]) -> bytes:
    """One server-sent event: an `event:` line equal to the JSON type, one `data:` line, a blank line."""
    payload = '{"type": "ping"}' if event == "ping" else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event}\ndata: {payload}\n\n".encode()


def message_start(msg: dict[str, Any]) -> bytes:
    """`message_start`: the empty message with its id, model and input token count."""
    return sse("message_start", {"type": "message_start", "message": msg})


def block_start(index: int, block: dict[str, Any]) -> bytes:
    """`content_block_start` for a text or tool_use block."""
    return sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})


# Deltas are nearly all of a stream's events: their bytes are a template plus one JSON string, which is several
# times cheaper than json.dumps of the whole event and gives the same bytes.
_DELTA = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,"delta":{"type":"%s","%s":%s}}\n\n'
)


def text_delta(index: int, text: str) -> bytes:
    """A `content_block_delta` carrying a piece of text."""
    return _DELTA % (index, b"text_delta", b"text", encode_basestring(text).encode())


def json_delta(index: int, partial_json: str) -> bytes:
    """A `content_block_delta` carrying a fragment of a tool call's JSON input."""
    return _DELTA % (index, b"input_json_delta", b"partial_json", encode_basestring(partial_json).encode())


def block_stop(index: int) -> bytes:
    """`content_block_stop`: the block at `index` is complete."""
    return sse("content_block_stop", {"type": "content_block_stop", "index": index})


def thinking_delta(index: int, thinking: str) -> bytes:
    """A `content_block_delta` carrying a piece of a thinking block's text."""
    return _DELTA % (index, b"thinking_delta", b"thinking", encode_basestring(thinking).encode())


def signature_delta(index: int, signature: str) -> bytes:
    """The one `signature_delta` of a thinking block, sent just before its `content_block_stop`."""
    return _DELTA % (index, b"signature_delta", b"signature", encode_basestring(signature).encode())


def citations_delta(index: int, citation: dict[str, Any]) -> bytes:
    """A `citations_delta`: the citation for the text that follows it in the same block."""
    return sse(
        "content_block_delta",
        {"type": "content_block_delta", "index": index, "delta": {"type": "citations_delta", "citation": citation}},
    )


def message_delta(stop_reason: str, stop_sequence: str | None, usage: dict[str, Any]) -> bytes:
    """`message_delta`: the stop reason and the cumulative usage (input and cache counts repeated)."""
    delta_usage = {
        k: usage[k] for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
    }
    if "output_tokens_details" in usage:
        delta_usage["output_tokens_details"] = usage["output_tokens_details"]
    return sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
            "usage": delta_usage,
        },
    )


def message_stop() -> bytes:
    """`message_stop`: the last event of a successful stream."""
    return sse("message_stop", {"type": "message_stop"})


def future_event() -> bytes:
    """An event type no SDK knows yet (opt-in): the docs warn new ones may be added, and clients must skip them."""
    return sse("future_event", {"type": "future_event", "note": "a new event type, simulated"})


def future_delta(index: int) -> bytes:
    """A `content_block_delta` whose delta type no SDK knows yet (opt-in), on a text block."""
    return sse(
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "future_delta", "note": "a new delta type, simulated"},
        },
    )


PING = sse("ping", {})
# The overload a stream can end with after its 200, spaced as in the API's documentation.
OVERLOADED_EVENT = (
    b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
)
