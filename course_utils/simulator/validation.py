"""Request checks that answer like the real API: 400 `invalid_request_error` naming the field, 404 for a model."""

from __future__ import annotations

from typing import Any

from .models import known_models

MAX_OUTPUT_TOKENS = 64_000
BLOCK_TYPES = {"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking",
               "search_result", "server_tool_use", "web_search_tool_result"}


class ApiError(Exception):
    """An error response: HTTP status, the API's error type, and a message."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


def _bad(message: str) -> ApiError:
    return ApiError(400, "invalid_request_error", message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_text(text: str) -> None:
    # The real API words these without a block index.
    if not text:
        raise _bad("messages: text content blocks must be non-empty")
    if not text.strip():
        raise _bad("messages: text content blocks must contain non-whitespace text")


def _check_content(content: Any, where: str, final_assistant: bool) -> None:
    if isinstance(content, str):
        _check_text(content)
        return
    if not isinstance(content, list):
        raise _bad(f"{where}.content: Input should be a valid string or a list of content blocks")
    if not content and not final_assistant:  # an empty final assistant turn is a prefill of nothing: allowed
        raise _bad(f"{where}: all messages must have non-empty content except for the optional final assistant "
                   "message")
    for j, block in enumerate(content):
        here = f"{where}.content.{j}"
        if not isinstance(block, dict) or "type" not in block:
            raise _bad(f"{here}.type: Field required")
        if block["type"] not in BLOCK_TYPES:
            raise _bad(f"{here}.type: Input tag '{block['type']}' found using 'type' does not match any of the "
                       f"expected tags: {', '.join(sorted(BLOCK_TYPES))}")
        if block["type"] == "text":
            if not isinstance(block.get("text"), str):
                raise _bad(f"{here}.text: Field required")
            _check_text(block["text"])
        if block["type"] == "tool_result" and not isinstance(block.get("tool_use_id"), str):
            raise _bad(f"{here}.tool_use_id: Field required")


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list):
        raise _bad("messages: Input should be a valid list")
    if not messages:
        raise _bad("messages: at least one message is required")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _bad(f"messages.{i}: Input should be a valid dictionary")
        if "role" not in message:
            raise _bad(f"messages.{i}.role: Field required")
        if message["role"] not in ("user", "assistant"):
            raise _bad(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if "content" not in message:
            raise _bad(f"messages.{i}.content: Field required")
        final_assistant = i == len(messages) - 1 and message["role"] == "assistant"
        _check_content(message["content"], f"messages.{i}", final_assistant)
        if final_assistant and _text_of(message["content"]) != _text_of(message["content"]).rstrip():
            raise _bad("messages: final assistant content cannot end with trailing whitespace")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    texts = [b["text"] for b in content if b.get("type") == "text"]
    return texts[-1] if texts else ""


def _check_model(body: dict[str, Any]) -> None:
    if "model" not in body:
        raise _bad("model: Field required")
    if not isinstance(body["model"], str) or not body["model"]:
        raise _bad("model: Input should be a valid string")


def validate_count_tokens(body: Any) -> dict[str, Any]:
    """Checks a `count_tokens` body; returns it."""
    if not isinstance(body, dict):
        raise _bad("Request body must be a JSON object")
    _check_model(body)
    if "messages" not in body:
        raise _bad("messages: Field required")
    _check_messages(body["messages"])
    _check_optional(body)
    _check_known_model(body["model"])
    return body


def validate_messages(body: Any) -> dict[str, Any]:
    """Checks a `POST /v1/messages` body the way the API does; returns it."""
    if not isinstance(body, dict):
        raise _bad("Request body must be a JSON object")
    _check_model(body)
    if "max_tokens" not in body:
        raise _bad("max_tokens: Field required")
    if not _is_int(body["max_tokens"]):
        raise _bad("max_tokens: Input should be a valid integer")
    if body["max_tokens"] < 1:
        raise _bad("max_tokens: Input should be greater than or equal to 1")
    if "messages" not in body:
        raise _bad("messages: Field required")
    _check_messages(body["messages"])
    _check_optional(body)
    if "stream" in body and not isinstance(body["stream"], bool):
        raise _bad("stream: Input should be a valid boolean")
    _check_known_model(body["model"])
    if body["max_tokens"] > MAX_OUTPUT_TOKENS:
        raise _bad(f"max_tokens: {body['max_tokens']} > {MAX_OUTPUT_TOKENS}, which is the maximum allowed number "
                   f"of output tokens for {body['model']}")
    return body


def _check_optional(body: dict[str, Any]) -> None:
    system = body.get("system")
    if system is not None and not isinstance(system, (str, list)):
        raise _bad("system: Input should be a valid string or a list of text blocks")
    stops = body.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops)):
        raise _bad("stop_sequences: Input should be a list of non-empty strings")
    temperature = body.get("temperature")
    if temperature is not None:
        if not isinstance(temperature, (int, float)) or isinstance(temperature, bool):
            raise _bad("temperature: Input should be a valid number")
        if not 0 <= temperature <= 1:
            raise _bad("temperature: Input should be greater than or equal to 0 and less than or equal to 1")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _bad("tools: Input should be a valid list")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                raise _bad(f"tools.{i}.name: Field required")
            if "type" not in tool and not isinstance(tool.get("input_schema"), dict):
                raise _bad(f"tools.{i}.input_schema: Field required")


def _check_known_model(model: str) -> None:
    if model not in known_models():
        raise ApiError(404, "not_found_error", f"model: {model}")
