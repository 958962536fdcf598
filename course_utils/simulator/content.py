"""Reading a request's content: its plain text, and the tool results of a user turn (replies and tools both read it)."""

from __future__ import annotations

from typing import Any


def request_text(content: Any) -> str:
    """The plain text of a request's content (a message, the system prompt, a tool result): a string as it is, a list
    of blocks as its text blocks joined by newlines."""
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "\n".join(parts)


def tool_results(content: Any) -> list[dict[str, Any]]:
    """The tool_result blocks of a user turn."""
    if isinstance(content, str):
        return []
    return [b for b in content or [] if isinstance(b, dict) and b.get("type") == "tool_result"]
