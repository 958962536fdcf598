"""Request checks that answer like the real API: 400 `invalid_request_error` naming the field, 404 for a model.

Every rule cites its source in tests/test_simulator_rules.py. Where the real API's wording is known (recorded, or
quoted verbatim in public bug reports) it is used as is; elsewhere the message names the field path the way the API
does (`messages.1.content.0.tool_use_id: ...`). Nothing here raises anything but `ApiError`.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import signing
from .models import known_models

API_VERSIONS = ("2023-06-01", "2026-10-21")
DEFAULT_VERSION = "2026-10-21"
OLD_VERSION = "2023-06-01"  # the only version that still takes temperature / top_p / top_k
MAX_OUTPUT_TOKENS = 64_000  # the limit of a model the catalogue does not describe (kept for importers)
MAX_CACHE_BREAKPOINTS = 4
MIN_THINKING_BUDGET = 1024
DOCS_THINKING = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"

BLOCK_TYPES = {
    "text",
    "image",
    "document",
    "search_result",
    "thinking",
    "redacted_thinking",
    "tool_use",
    "tool_result",
    "server_tool_use",
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
    "tool_search_tool_result",
    "container_upload",
}
TOOL_RESULT_CONTENT_TYPES = {"text", "image", "document", "search_result", "tool_reference", "browser_state"}
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")

# Top-level body fields: the SDK's `messages.create()` / `count_tokens()` bodies (stable and beta), plus the
# sampling parameters 2.11 no longer exposes but the API still takes through `extra_body`.
SAMPLING = ("temperature", "top_p", "top_k")
BETA_FIELDS = {
    "context_management",
    "mcp_servers",
    "output_format",
    "fallbacks",
    "fallback_credit_token",
    "billing_policy",
    "compaction",
    "thread",
}
MESSAGES_FIELDS = {
    "model",
    "messages",
    "max_tokens",
    "cache_control",
    "container",
    "diagnostics",
    "inference_geo",
    "metadata",
    "output_config",
    "service_tier",
    "speed",
    "stop_sequences",
    "stream",
    "system",
    "thinking",
    "tool_choice",
    "tools",
    *SAMPLING,
    *BETA_FIELDS,
}
COUNT_TOKENS_FIELDS = {
    "model",
    "messages",
    "cache_control",
    "output_config",
    "speed",
    "system",
    "thinking",
    "tool_choice",
    "tools",
    *BETA_FIELDS,
}
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
TOOL_NAME_PATTERN = "^[a-zA-Z0-9_-]{1,64}$"
EFFORTS = ("low", "medium", "high", "xhigh", "max")
THINKING_TYPES = ("enabled", "adaptive", "disabled", "between_tools")
# The one documented sampling default ("passing its default is still accepted" on Sonnet 5): temperature 1.0.
SAMPLING_DEFAULTS = {"temperature": 1.0}


class ApiError(Exception):
    """An error response: HTTP status, the API's error type, and a message."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


def _bad(message: str) -> ApiError:
    return ApiError(400, "invalid_request_error", message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and not (isinstance(value, float) and not math.isfinite(value))
    )


def _extra(where: str, value: dict[str, Any], allowed: set[str]) -> None:
    for key in value:
        if key not in allowed:
            raise _bad(f"{where}{key}: Extra inputs are not permitted")


# -- the model catalogue (course_utils/simulator/models.py `spec()`), through one adapter --------------------------


@dataclass(frozen=True)
class Rules:
    """What the request rules need to know of a model."""

    max_tokens: int
    thinking_types: frozenset[str]
    thinking_default: str  # "disabled" or "adaptive": what omitting `thinking` means
    prefill: bool
    sampling: str  # "any", "one_of", "removed", "default_only"


def _fallback_rules(model: str) -> Rules:
    """The documented facts (skills shared/models.md, model-migration.md, error-codes.md) for a model the catalogue
    does not describe yet; lenient where nothing is documented."""
    base = re.sub(r"-\d{8}$", "", model)
    if base in ("claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"):
        return Rules(64_000, frozenset({"enabled", "disabled"}), "disabled", True, "one_of")
    if base in ("claude-sonnet-4-6", "claude-opus-4-6"):
        return Rules(128_000, frozenset({"enabled", "adaptive", "disabled"}), "disabled", False, "one_of")
    if base in ("claude-opus-4-7", "claude-opus-4-8"):
        return Rules(128_000, frozenset({"adaptive", "disabled"}), "disabled", False, "removed")
    if base == "claude-sonnet-5":
        return Rules(128_000, frozenset({"adaptive", "disabled"}), "adaptive", False, "default_only")
    if base in ("claude-fable-5", "claude-mythos-5"):
        return Rules(128_000, frozenset({"adaptive"}), "adaptive", False, "removed")
    return Rules(128_000, frozenset(THINKING_TYPES), "disabled", True, "any")


def model_rules(model: str) -> Rules:
    """The model's rules from the catalogue's `spec(model)` when it has one, else the documented fallback."""
    from . import models

    spec_of = getattr(models, "spec", None)
    spec = None
    if callable(spec_of):
        try:
            spec = spec_of(model)
        except Exception:  # noqa: BLE001 - a catalogue mid-rewrite must not turn a request into a 500
            spec = None
    if spec is None:
        return _fallback_rules(model)
    fallback = _fallback_rules(model)
    return Rules(
        max_tokens=int(getattr(spec, "max_tokens", fallback.max_tokens)),
        thinking_types=frozenset(getattr(spec, "thinking_types", fallback.thinking_types)),
        thinking_default=str(getattr(spec, "thinking_default", fallback.thinking_default)),
        prefill=bool(getattr(spec, "prefill", fallback.prefill)),
        sampling=str(getattr(spec, "sampling", fallback.sampling)),
    )


# -- the version header --------------------------------------------------------------------------------------------


def check_version(headers: Mapping[str, str]) -> str:
    """The request's `anthropic-version`; a 400 when it is missing or not a version the API knows."""
    value = None
    for key, item in headers.items():
        if isinstance(key, str) and key.lower() == "anthropic-version":
            value = item
    if value is None or not str(value).strip():
        raise _bad("anthropic-version: header is required")
    value = str(value).strip()
    if value not in API_VERSIONS:
        raise _bad(f"anthropic-version: {value!r} is not a valid version. Valid versions: {', '.join(API_VERSIONS)}")
    return value


# -- bodies ---------------------------------------------------------------------------------------------------------


def validate_messages(body: Any, *, version: str = DEFAULT_VERSION) -> dict[str, Any]:
    """Checks a `POST /v1/messages` body the way the API does; returns it."""
    if not isinstance(body, dict):
        raise _bad("Request body must be a JSON object")
    _extra("", body, MESSAGES_FIELDS if version == OLD_VERSION else MESSAGES_FIELDS - set(SAMPLING))
    _check_model(body)
    if "max_tokens" not in body:
        raise _bad("max_tokens: Field required")
    if not _is_int(body["max_tokens"]):
        raise _bad("max_tokens: Input should be a valid integer")
    if body["max_tokens"] < 0:  # 0 is allowed: it pre-warms the prompt cache (SDK docstring)
        raise _bad("max_tokens: Input should be greater than or equal to 0")
    if "messages" not in body:
        raise _bad("messages: Field required")
    _check_request(body, version)
    if "stream" in body and not isinstance(body["stream"], bool):
        raise _bad("stream: Input should be a valid boolean")
    _check_known_model(body["model"])
    rules = model_rules(body["model"])
    if body["max_tokens"] > rules.max_tokens:
        raise _bad(
            f"max_tokens: {body['max_tokens']} > {rules.max_tokens}, which is the maximum allowed number "
            f"of output tokens for {body['model']}"
        )
    _check_model_rules(body, rules, count_only=False)
    return body


def validate_count_tokens(body: Any, *, version: str = DEFAULT_VERSION) -> dict[str, Any]:
    """Checks a `count_tokens` body; returns it."""
    if not isinstance(body, dict):
        raise _bad("Request body must be a JSON object")
    _extra("", body, COUNT_TOKENS_FIELDS)
    _check_model(body)
    if "messages" not in body:
        raise _bad("messages: Field required")
    _check_request(body, version)
    _check_known_model(body["model"])
    _check_model_rules(body, model_rules(body["model"]), count_only=True)
    return body


def _check_model(body: dict[str, Any]) -> None:
    if "model" not in body:
        raise _bad("model: Field required")
    if not isinstance(body["model"], str) or not body["model"]:
        raise _bad("model: Input should be a valid string")


def _check_known_model(model: str) -> None:
    if model not in known_models():
        raise ApiError(404, "not_found_error", f"model: {model}")


def _check_request(body: dict[str, Any], version: str) -> None:
    """The model-independent shape of everything in the body, and the rules across fields."""
    breakpoints = [0]
    _check_messages(body["messages"], breakpoints)
    if version != OLD_VERSION:
        _check_new_version_content(body["messages"])
    _check_system(body.get("system"), breakpoints)
    names = _check_tools(body.get("tools"), breakpoints)
    _check_tool_choice(body.get("tool_choice"), names, "tool_choice" in body)
    if body.get("cache_control") is not None:
        _check_cache_control(body["cache_control"], "cache_control")
        breakpoints[0] += 1
    if breakpoints[0] > MAX_CACHE_BREAKPOINTS:
        raise _bad(
            f"cache_control: A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {breakpoints[0]}."
        )
    _check_sampling_types(body)
    _check_thinking_shape(body.get("thinking"), "thinking" in body)
    _check_small_fields(body)
    _check_turns(body["messages"])
    _check_thinking_blocks(body["messages"])


def _check_thinking_blocks(messages: list[dict[str, Any]]) -> None:
    """Thinking blocks sent back must be the ones the API produced: a signature it made, over this very text."""
    latest = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
    for i, message in enumerate(messages):
        if message["role"] != "assistant" or not isinstance(message["content"], list):
            continue
        for j, block in enumerate(message["content"]):
            kind = block.get("type")
            if kind == "thinking":
                genuine = signing.verify_thinking("", block["signature"])  # made by the simulator, text aside
                if genuine and signing.verify_thinking(block["thinking"], block["signature"]):
                    continue
            elif kind == "redacted_thinking":
                if signing.verify_redacted(block["data"]):
                    continue
                genuine = False
            else:
                continue
            if i == latest and (genuine or kind == "redacted_thinking"):
                raise _bad(
                    f"messages.{i}.content.{j}: `thinking` or `redacted_thinking` blocks in the latest "
                    "assistant message cannot be modified. These blocks must remain as they were in the "
                    "original response."
                )
            if kind == "thinking":
                raise _bad(f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block")
            raise _bad(f"messages.{i}.content.{j}.data: Invalid `data` in `redacted_thinking` block")


def _check_small_fields(body: dict[str, Any]) -> None:
    stops = body.get("stop_sequences")
    if "stop_sequences" in body and (not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops)):
        raise _bad("stop_sequences: Input should be a list of non-empty strings")
    metadata = body.get("metadata")
    if "metadata" in body:
        if not isinstance(metadata, dict):
            raise _bad("metadata: Input should be a valid dictionary")
        _extra("metadata.", metadata, {"user_id"})
        if metadata.get("user_id") is not None and not isinstance(metadata["user_id"], str):
            raise _bad("metadata.user_id: Input should be a valid string")
    if "service_tier" in body and body["service_tier"] not in ("auto", "standard_only"):
        raise _bad("service_tier: Input should be 'auto' or 'standard_only'")
    if body.get("speed") is not None and body["speed"] not in ("standard", "fast"):
        raise _bad("speed: Input should be 'standard' or 'fast'")
    if body.get("inference_geo") is not None and not isinstance(body["inference_geo"], str):
        raise _bad("inference_geo: Input should be a valid string")
    config = body.get("output_config")
    if "output_config" in body:
        if not isinstance(config, dict):
            raise _bad("output_config: Input should be a valid dictionary")
        if config.get("effort") is not None and config["effort"] not in EFFORTS:
            raise _bad("output_config.effort: Input should be " + ", ".join(f"'{e}'" for e in EFFORTS))
        fmt = config.get("format")
        if fmt is not None and (not isinstance(fmt, dict) or fmt.get("type") != "json_schema"):
            raise _bad("output_config.format.type: Input should be 'json_schema'")
        if isinstance(fmt, dict) and not isinstance(fmt.get("schema"), dict):
            raise _bad("output_config.format.schema: Field required")


def _check_sampling_types(body: dict[str, Any]) -> None:
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            if not _is_number(body[name]):
                raise _bad(f"{name}: Input should be a valid number")
            if not 0 <= body[name] <= 1:
                raise _bad(f"{name}: Input should be greater than or equal to 0 and less than or equal to 1")
    if body.get("top_k") is not None:
        if not _is_int(body["top_k"]):
            raise _bad("top_k: Input should be a valid integer")
        if body["top_k"] < 0:
            raise _bad("top_k: Input should be greater than or equal to 0")


# -- cache_control ---------------------------------------------------------------------------------------------------


def _check_cache_control(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise _bad(f"{where}: Input should be a valid dictionary")
    if value.get("type") != "ephemeral":
        raise _bad(f"{where}.type: Input should be 'ephemeral'")
    _extra(f"{where}.", value, {"type", "ttl"})
    if "ttl" in value and value["ttl"] not in ("5m", "1h"):
        raise _bad(f"{where}.ttl: Input should be '5m' or '1h'")


def _count_cache_control(block: dict[str, Any], where: str, breakpoints: list[int]) -> None:
    if block.get("cache_control") is not None:
        _check_cache_control(block["cache_control"], f"{where}.cache_control")
        breakpoints[0] += 1


# -- system and messages -------------------------------------------------------------------------------------------


def _check_system(system: Any, breakpoints: list[int]) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise _bad("system: Input should be a valid string or a list of text blocks")
    for i, block in enumerate(system):
        _check_text_block(block, f"system.{i}", breakpoints)


def _check_text_block(block: Any, where: str, breakpoints: list[int]) -> None:
    if not isinstance(block, dict):
        raise _bad(f"{where}: Input should be a valid dictionary")
    if block.get("type") != "text":
        raise _bad(f"{where}.type: Input should be 'text'")
    if not isinstance(block.get("text"), str):
        raise _bad(f"{where}.text: Field required")
    _check_text(block["text"], where.split(".", 1)[0])
    _count_cache_control(block, where, breakpoints)
    if block.get("citations") is not None and not isinstance(block["citations"], list):
        raise _bad(f"{where}.citations: Input should be a valid list")


def _check_text(text: str, field: str = "messages") -> None:
    # The real API words these without a block index.
    if not text:
        raise _bad(f"{field}: text content blocks must be non-empty")
    if not text.strip():
        raise _bad(f"{field}: text content blocks must contain non-whitespace text")


def _check_messages(messages: Any, breakpoints: list[int]) -> None:
    if not isinstance(messages, list):
        raise _bad("messages: Input should be a valid list")
    if not messages:
        raise _bad("messages: at least one message is required")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _bad(f"messages.{i}: Input should be a valid dictionary")
        if "role" not in message:
            raise _bad(f"messages.{i}.role: Field required")
        if message["role"] not in ("user", "assistant", "system"):
            raise _bad(f"messages.{i}.role: Input should be 'user', 'assistant' or 'system'")
        if "content" not in message:
            raise _bad(f"messages.{i}.content: Field required")
        _extra(f"messages.{i}.", message, {"role", "content"})
        if message["role"] == "system":  # a mid-session system message: a string or text blocks
            if isinstance(message["content"], str):
                _check_text(message["content"])
            elif isinstance(message["content"], list) and message["content"]:
                for j, block in enumerate(message["content"]):
                    _check_text_block(block, f"messages.{i}.content.{j}", breakpoints)
            else:
                raise _bad(f"messages.{i}.content: Input should be a valid string or a non-empty list of text blocks")
            continue
        final_assistant = i == len(messages) - 1 and message["role"] == "assistant"
        _check_content(message["content"], f"messages.{i}", final_assistant, breakpoints)
        if final_assistant and _last_text(message["content"]) != _last_text(message["content"]).rstrip():
            raise _bad("messages: final assistant content cannot end with trailing whitespace")
    if messages[0]["role"] != "user":
        raise _bad('messages.0.role: first message must use the "user" role')


def _check_new_version_content(messages: list[dict[str, Any]]) -> None:
    """What 2026-10-21 no longer takes in a message: document blocks from the assistant, citations on user text."""
    for i, message in enumerate(messages):
        if not isinstance(message["content"], list):
            continue
        for j, block in enumerate(message["content"]):
            if message["role"] == "assistant" and block.get("type") == "document":
                raise _bad(
                    f"messages.{i}.content.{j}.type: `document` blocks are not permitted in `assistant` messages"
                )
            if message["role"] == "user" and block.get("type") == "text" and block.get("citations"):
                raise _bad(
                    f"messages.{i}.content.{j}.citations: citations are not permitted on `text` blocks in "
                    "`user` messages"
                )


def _last_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    texts = [b["text"] for b in content if isinstance(b, dict) and b.get("type") == "text"]
    return texts[-1] if texts else ""


def _check_content(content: Any, where: str, final_assistant: bool, breakpoints: list[int]) -> None:
    if isinstance(content, str):
        _check_text(content)
        return
    if not isinstance(content, list):
        raise _bad(f"{where}.content: Input should be a valid string or a list of content blocks")
    if not content and not final_assistant:  # an empty final assistant turn is a prefill of nothing: allowed
        raise _bad(f"{where}: all messages must have non-empty content except for the optional final assistant message")
    for j, block in enumerate(content):
        _check_block(block, f"{where}.content.{j}", breakpoints)


def _check_block(block: Any, here: str, breakpoints: list[int], allowed: set[str] = BLOCK_TYPES) -> None:
    if not isinstance(block, dict) or "type" not in block:
        raise _bad(f"{here}.type: Field required")
    kind = block["type"]
    if not isinstance(kind, str) or kind not in allowed:
        raise _bad(
            f"{here}.type: Input tag '{kind}' found using 'type' does not match any of the "
            f"expected tags: {', '.join(sorted(allowed))}"
        )
    if kind == "text":
        if not isinstance(block.get("text"), str):
            raise _bad(f"{here}.text: Field required")
        _check_text(block["text"])
        if block.get("citations") is not None and not isinstance(block["citations"], list):
            raise _bad(f"{here}.citations: Input should be a valid list")
    elif kind == "image":
        _check_image(block, here)
    elif kind == "document":
        _check_document(block, here, breakpoints)
    elif kind == "search_result":
        for key in ("source", "title"):
            if not isinstance(block.get(key), str):
                raise _bad(f"{here}.{key}: Field required")
        if not isinstance(block.get("content"), list):
            raise _bad(f"{here}.content: Field required")
        for k, inner in enumerate(block["content"]):
            _check_text_block(inner, f"{here}.content.{k}", breakpoints)
        _check_citations_config(block, here)
    elif kind == "tool_use":
        if not isinstance(block.get("id"), str) or not block["id"]:
            raise _bad(f"{here}.id: Field required")
        if not isinstance(block.get("name"), str) or not block["name"]:
            raise _bad(f"{here}.name: Field required")
        if not isinstance(block.get("input"), dict):
            raise _bad(f"{here}.input: Input should be a valid dictionary")
    elif kind == "tool_result":
        _check_tool_result(block, here, breakpoints)
    elif kind == "thinking":
        if not isinstance(block.get("thinking"), str):
            raise _bad(f"{here}.thinking: Field required")
        if not isinstance(block.get("signature"), str):
            raise _bad(f"{here}.signature: Field required")
    elif kind == "redacted_thinking" and not isinstance(block.get("data"), str):
        raise _bad(f"{here}.data: Field required")
    _count_cache_control(block, here, breakpoints)


def _check_tool_result(block: dict[str, Any], here: str, breakpoints: list[int]) -> None:
    if not isinstance(block.get("tool_use_id"), str):
        raise _bad(f"{here}.tool_use_id: Field required")
    if "is_error" in block and not isinstance(block["is_error"], bool):
        raise _bad(f"{here}.is_error: Input should be a valid boolean")
    content = block.get("content")
    if content is None or isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _bad(f"{here}.content: Input should be a valid string or a list of content blocks")
    for k, inner in enumerate(content):
        _check_block(inner, f"{here}.content.{k}", breakpoints, TOOL_RESULT_CONTENT_TYPES)


def _check_citations_config(block: dict[str, Any], here: str) -> None:
    citations = block.get("citations")
    if citations is None:
        return
    if not isinstance(citations, dict):
        raise _bad(f"{here}.citations: Input should be a valid dictionary")
    _extra(f"{here}.citations.", citations, {"enabled"})
    if "enabled" in citations and not isinstance(citations["enabled"], bool):
        raise _bad(f"{here}.citations.enabled: Input should be a valid boolean")


def _b64(data: Any, where: str) -> bytes:
    if not isinstance(data, str):
        raise _bad(f"{where}: Field required")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"{where}: Input should be valid base64 data") from None
    if not raw:
        raise _bad(f"{where}: the data is empty")
    return raw


def _image_type(raw: bytes) -> str | None:
    if raw.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if raw.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if raw.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "image/webp"
    return None


def _source(block: dict[str, Any], here: str, kinds: tuple[str, ...]) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise _bad(f"{here}.source: Field required")
    if source.get("type") not in kinds:
        raise _bad(
            f"{here}.source.type: Input tag '{source.get('type')}' found using 'type' does not match any of "
            f"the expected tags: {', '.join(kinds)}"
        )
    return source


def _check_image(block: dict[str, Any], here: str) -> None:
    source = _source(block, here, ("base64", "url", "file"))
    if source["type"] == "url":
        if not isinstance(source.get("url"), str) or not source["url"]:
            raise _bad(f"{here}.source.url: Field required")
        return
    if source["type"] == "file":
        if not isinstance(source.get("file_id"), str) or not source["file_id"]:
            raise _bad(f"{here}.source.file_id: Field required")
        return
    media_type = source.get("media_type")
    if media_type not in IMAGE_MEDIA_TYPES:
        raise _bad(f"{here}.source.media_type: Input should be " + ", ".join(f"'{m}'" for m in IMAGE_MEDIA_TYPES))
    raw = _b64(source.get("data"), f"{here}.source.data")
    actual = _image_type(raw)
    if actual is None:
        raise _bad(
            f"{here}.source.data: The image was specified using the {media_type} media type, but it does not "
            "appear to be a valid image"
        )
    if actual != media_type:
        raise _bad(
            f"{here}.source.data: The image was specified using the {media_type} media type, but the image "
            f"appears to be a {actual} image"
        )


def _check_document(block: dict[str, Any], here: str, breakpoints: list[int]) -> None:
    source = _source(block, here, ("base64", "text", "content", "url", "file"))
    kind = source["type"]
    if kind == "text":
        if source.get("media_type") != "text/plain":
            raise _bad(f"{here}.source.media_type: Input should be 'text/plain'")
        if not isinstance(source.get("data"), str):
            raise _bad(f"{here}.source.data: Field required")
    elif kind == "base64":
        if source.get("media_type") != "application/pdf":
            raise _bad(f"{here}.source.media_type: Input should be 'application/pdf'")
        if not _b64(source.get("data"), f"{here}.source.data").startswith(b"%PDF-"):
            raise _bad(f"{here}.source.data: The PDF specified was not valid")
    elif kind == "content":
        content = source.get("content")
        if isinstance(content, str):
            _check_text(content)
        elif isinstance(content, list) and content:
            for k, inner in enumerate(content):
                _check_block(inner, f"{here}.source.content.{k}", breakpoints, {"text", "image"})
        else:
            raise _bad(f"{here}.source.content: Input should be a valid string or a non-empty list of content blocks")
    elif kind == "url":
        if not isinstance(source.get("url"), str) or not source["url"]:
            raise _bad(f"{here}.source.url: Field required")
    elif not isinstance(source.get("file_id"), str) or not source["file_id"]:
        raise _bad(f"{here}.source.file_id: Field required")
    for key in ("title", "context"):
        if block.get(key) is not None and not isinstance(block[key], str):
            raise _bad(f"{here}.{key}: Input should be a valid string")
    _check_citations_config(block, here)


# -- turns: first message, tool_use / tool_result pairing ---------------------------------------------------------


def _turns(messages: list[dict[str, Any]]) -> list[tuple[str, int, list[Any]]]:
    """Consecutive same-role messages combined into one turn, as the API combines them (SDK docstring; the real
    400 recorded in f59a9391 names the combined turn). System messages are left out. Each turn is (role, index of
    its first message, its blocks); string content counts as one text block."""
    turns: list[tuple[str, int, list[Any]]] = []
    for i, message in enumerate(messages):
        if message["role"] == "system":
            continue
        blocks = [{"type": "text"}] if isinstance(message["content"], str) else list(message["content"])
        if turns and turns[-1][0] == message["role"]:
            turns[-1][2].extend(blocks)
        else:
            turns.append((message["role"], i, blocks))
    return turns


def _check_turns(messages: list[dict[str, Any]]) -> None:
    turns = _turns(messages)
    seen: set[str] = set()
    for t, (role, first, blocks) in enumerate(turns):
        if role == "assistant":
            ids = []
            for j, block in enumerate(blocks):
                if block.get("type") == "tool_use":
                    if block["id"] in seen:
                        raise _bad(f"messages.{first}.content.{j}: `tool_use` ids must be unique")
                    seen.add(block["id"])
                    ids.append(block["id"])
            following = turns[t + 1][2] if t + 1 < len(turns) else []
            answered = {b.get("tool_use_id") for b in following if b.get("type") == "tool_result"}
            missing = [i for i in ids if i not in answered]
            if missing:
                raise _bad(
                    f"messages.{first}: `tool_use` ids were found without `tool_result` blocks immediately "
                    f"after: {', '.join(missing)}. Each `tool_use` block must have a corresponding "
                    "`tool_result` block in the next message."
                )
        else:
            previous = turns[t - 1][2] if t > 0 else []
            offered = {b.get("id") for b in previous if b.get("type") == "tool_use"}
            for j, block in enumerate(blocks):
                if block.get("type") == "tool_result" and block["tool_use_id"] not in offered:
                    raise _bad(
                        f"messages.{first}.content.{j}: unexpected `tool_use_id` found in `tool_result` "
                        f"blocks: {block['tool_use_id']}. Each `tool_result` block must have a corresponding "
                        "`tool_use` block in the previous message."
                    )


# -- tools -----------------------------------------------------------------------------------------------------------


def _check_tools(tools: Any, breakpoints: list[int]) -> list[str]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _bad("tools: Input should be a valid list")
    names: list[str] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise _bad(f"tools.{i}: Input should be a valid dictionary")
        server = tool.get("type") not in (None, "custom")
        if server and not isinstance(tool.get("type"), str):
            raise _bad(f"tools.{i}.type: Input should be a valid string")
        if not isinstance(tool.get("name"), str):
            raise _bad(f"tools.{i}.name: Field required")
        if not server:
            if not TOOL_NAME.match(tool["name"]) or tool["name"].endswith("\n"):
                raise _bad(f"tools.{i}.name: String should match pattern '{TOOL_NAME_PATTERN}'")
            if "input_schema" not in tool:
                raise _bad(f"tools.{i}.input_schema: Field required")
            schema = tool["input_schema"]
            if not isinstance(schema, dict):
                raise _bad(f"tools.{i}.input_schema: Input should be a valid dictionary")
            if schema.get("type") != "object":
                raise _bad(f"tools.{i}.input_schema.type: Input should be 'object'")
            if "description" in tool and not isinstance(tool["description"], str):
                raise _bad(f"tools.{i}.description: Input should be a valid string")
        _count_cache_control(tool, f"tools.{i}", breakpoints)
        if tool["name"] in names:
            raise _bad("tools: Tool names must be unique.")
        names.append(tool["name"])
    return names


def _check_tool_choice(choice: Any, names: list[str], given: bool) -> None:
    if not given:
        return
    if not isinstance(choice, dict):
        raise _bad("tool_choice: Input should be a valid dictionary")
    kind = choice.get("type")
    if kind not in ("auto", "any", "tool", "none"):
        raise _bad(
            f"tool_choice.type: Input tag '{kind}' found using 'type' does not match any of the expected "
            "tags: 'auto', 'any', 'tool', 'none'"
        )
    allowed = (
        {"type"}
        | ({"disable_parallel_tool_use"} if kind != "none" else set())
        | ({"name"} if kind == "tool" else set())
    )
    _extra("tool_choice.", choice, allowed)
    if "disable_parallel_tool_use" in choice and not isinstance(choice["disable_parallel_tool_use"], bool):
        raise _bad("tool_choice.disable_parallel_tool_use: Input should be a valid boolean")
    if kind == "tool":
        if not isinstance(choice.get("name"), str):
            raise _bad("tool_choice.name: Field required")
        if choice["name"] not in names:
            raise _bad(f"tool_choice.name: Tool '{choice['name']}' not found in the provided tools")


# -- thinking --------------------------------------------------------------------------------------------------------


def _check_thinking_shape(thinking: Any, given: bool) -> None:
    if not given:
        return
    if not isinstance(thinking, dict):
        raise _bad("thinking: Input should be a valid dictionary")
    kind = thinking.get("type")
    if kind not in THINKING_TYPES:
        raise _bad(
            f"thinking.type: Input tag '{kind}' found using 'type' does not match any of the expected tags: "
            + ", ".join(f"'{t}'" for t in THINKING_TYPES)
        )
    allowed = (
        {"type"}
        | ({"display"} if kind in ("enabled", "adaptive") else set())
        | ({"budget_tokens"} if kind == "enabled" else set())
    )
    _extra(f"thinking.{kind}.", thinking, allowed)
    if thinking.get("display") is not None and thinking["display"] not in ("summarized", "omitted"):
        raise _bad(f"thinking.{kind}.display: Input should be 'summarized' or 'omitted'")
    if kind == "enabled":
        if "budget_tokens" not in thinking:
            raise _bad("thinking.enabled.budget_tokens: Field required")
        if not _is_int(thinking["budget_tokens"]):
            raise _bad("thinking.enabled.budget_tokens: Input should be a valid integer")
        if thinking["budget_tokens"] < MIN_THINKING_BUDGET:
            raise _bad(
                f"thinking.enabled.budget_tokens: Input should be greater than or equal to {MIN_THINKING_BUDGET}"
            )


def thinking_on(body: dict[str, Any], rules: Rules | None = None) -> bool:
    """Whether the request thinks: `enabled`/`adaptive` given, or `thinking` omitted on a model whose default is
    adaptive. (`between_tools` is thinking off, SDK ThinkingTypes.)"""
    thinking = body.get("thinking")
    if isinstance(thinking, dict):
        return thinking.get("type") in ("enabled", "adaptive")
    rules = rules or model_rules(str(body.get("model", "")))
    return rules.thinking_default == "adaptive"


def _check_model_rules(body: dict[str, Any], rules: Rules, count_only: bool) -> None:
    model = body["model"]
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking["type"] not in rules.thinking_types:
        supported = ", ".join(f"'{t}'" for t in THINKING_TYPES if t in rules.thinking_types)
        raise _bad(f"thinking.type: '{thinking['type']}' is not supported by {model}. Supported types: {supported}")
    on = thinking_on(body, rules)
    if (
        not count_only
        and isinstance(thinking, dict)
        and thinking["type"] == "enabled"
        and thinking["budget_tokens"] >= body["max_tokens"]
    ):
        raise _bad(
            "max_tokens: `max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
            f"documentation at {DOCS_THINKING}#max-tokens-and-context-window-size"
        )
    _check_sampling_rule(body, rules, model, on)
    choice = body.get("tool_choice")
    if on and isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        raise _bad("tool_choice: Thinking may not be enabled when tool_choice forces tool use.")
    messages = body["messages"]
    last = messages[-1]
    if not count_only and last["role"] == "assistant":
        if not rules.prefill:
            raise _bad(
                "This model does not support assistant message prefill. The conversation must end with a user message."
            )
        if on:
            raise _bad(
                f"messages.{len(messages) - 1}: assistant message prefill is not supported when thinking is "
                "enabled. The conversation must end with a user message."
            )
        content = last["content"] if isinstance(last["content"], list) else []
        for j, block in enumerate(content):
            if block.get("type") in ("thinking", "redacted_thinking"):
                raise _bad(
                    f"messages.{len(messages) - 1}.content.{j}: When thinking is disabled, an `assistant` "
                    "message in the final position cannot contain `thinking`. To use thinking blocks, enable "
                    "`thinking` in your request."
                )
    if on:
        _check_thinking_history(messages)


def _check_sampling_rule(body: dict[str, Any], rules: Rules, model: str, on: bool) -> None:
    given = [name for name in SAMPLING if body.get(name) is not None]
    if rules.sampling == "removed" and given:
        raise _bad(f"{given[0]}: `{given[0]}` is not supported by {model}. Remove the parameter.")
    if rules.sampling == "default_only":
        for name in given:
            if body[name] != SAMPLING_DEFAULTS.get(name, object()):
                raise _bad(f"{name}: {model} only accepts the default value of `{name}`. Remove the parameter.")
    if rules.sampling == "one_of" and "temperature" in given and "top_p" in given:
        raise _bad(f"temperature: `temperature` and `top_p` cannot both be specified for {model}. Please use only one.")
    if on:  # thinking: no temperature or top_k modifications, top_p only between 0.95 and 1
        if body.get("temperature") is not None and body["temperature"] != 1:
            raise _bad(
                "temperature: `temperature` may only be set to 1 when thinking is enabled. Please consult our "
                f"documentation at {DOCS_THINKING}#feature-compatibility"
            )
        if body.get("top_k") is not None:
            raise _bad(
                "top_k: `top_k` must be unset when thinking is enabled. Please consult our documentation at "
                f"{DOCS_THINKING}#feature-compatibility"
            )
        if body.get("top_p") is not None and body["top_p"] < 0.95:
            raise _bad(
                "top_p: `top_p` must be greater than or equal to 0.95 or unset when thinking is enabled. "
                f"Please consult our documentation at {DOCS_THINKING}#feature-compatibility"
            )


def _check_thinking_history(messages: list[dict[str, Any]]) -> None:
    """With thinking on, a request that continues a tool loop (its last turn holds tool_results) must send back the
    assistant turn that asked for the tools starting with its thinking block."""
    turns = _turns(messages)
    if len(turns) < 2 or turns[-1][0] != "user":
        return
    if not any(b.get("type") == "tool_result" for b in turns[-1][2]):
        return
    role, first, blocks = turns[-2]
    if role != "assistant" or not any(b.get("type") == "tool_use" for b in blocks) or not blocks:
        return
    if blocks[0].get("type") not in ("thinking", "redacted_thinking"):
        raise _bad(
            f"messages.{first}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
            f"`{blocks[0].get('type')}`. When `thinking` is enabled, a final `assistant` message must start "
            "with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We "
            "recommend you include thinking blocks from previous turns. To avoid this requirement, disable "
            f"`thinking`. Please consult our documentation at {DOCS_THINKING}"
        )
