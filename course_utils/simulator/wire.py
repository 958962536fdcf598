"""The Messages API's wire shapes: ids, headers, error bodies and the stream's events, as the real API sends them."""

from __future__ import annotations

import hashlib
import json
from json.encoder import encode_basestring  # json.dumps's own string encoder
from datetime import datetime, timedelta, timezone
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


def error_body(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    """The JSON body of every API error, before or during a stream."""
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}


def ratelimit_headers(now: datetime | None = None) -> dict[str, str]:
    """The `anthropic-ratelimit-*` headers; the SDK ignores them, but a faithful server sends them."""
    now = now or datetime.now(timezone.utc)
    reset = (now + timedelta(seconds=60)).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    limits = {"requests": 4000, "tokens": 2_000_000, "input-tokens": 1_600_000, "output-tokens": 400_000}
    headers: dict[str, str] = {}
    for name, limit in limits.items():
        headers[f"anthropic-ratelimit-{name}-limit"] = str(limit)
        headers[f"anthropic-ratelimit-{name}-remaining"] = str(limit - 1)
        headers[f"anthropic-ratelimit-{name}-reset"] = reset
    return headers


def usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    """A full usage object as in a Message (no prompt caching in the simulator)."""
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def message(
    *, msg_id: str, model: str, content: list[dict[str, Any]], stop_reason: str | None,
    stop_sequence: str | None, input_tokens: int, output_tokens: int,
) -> dict[str, Any]:
    """A Message object in the API's key order."""
    return {
        "model": model, "id": msg_id, "type": "message", "role": "assistant", "content": content,
        "stop_reason": stop_reason, "stop_sequence": stop_sequence,
        "usage": usage(input_tokens, output_tokens),
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
_DELTA = (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
          b'"delta":{"type":"%s","%s":%s}}\n\n')


def text_delta(index: int, text: str) -> bytes:
    """A `content_block_delta` carrying a piece of text."""
    return _DELTA % (index, b"text_delta", b"text", encode_basestring(text).encode())


def json_delta(index: int, partial_json: str) -> bytes:
    """A `content_block_delta` carrying a fragment of a tool call's JSON input."""
    return _DELTA % (index, b"input_json_delta", b"partial_json", encode_basestring(partial_json).encode())


def block_stop(index: int) -> bytes:
    """`content_block_stop`: the block at `index` is complete."""
    return sse("content_block_stop", {"type": "content_block_stop", "index": index})


def message_delta(stop_reason: str, stop_sequence: str | None, input_tokens: int, output_tokens: int) -> bytes:
    """`message_delta`: the stop reason and the cumulative usage."""
    return sse("message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
        "usage": {"input_tokens": input_tokens, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0, "output_tokens": output_tokens},
    })


def message_stop() -> bytes:
    """`message_stop`: the last event of a successful stream."""
    return sse("message_stop", {"type": "message_stop"})


PING = sse("ping", {})
# The overload a stream can end with after its 200, spaced as in the API's documentation.
OVERLOADED_EVENT = (b'event: error\n'
                    b'data: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n')

