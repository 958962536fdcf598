"""A deterministic stand-in for a tokenizer: about four characters a token, like Claude's on English prose."""

from __future__ import annotations

import json
import re
from typing import Any

# A word piece of up to five letters (with its leading space), a run of up to three digits, or one other character.
# Real tokenizers are subword-based; this keeps the same order of magnitude and is stable across runs.
_TOKEN = re.compile(r" ?[A-Za-z]{1,5}| ?\d{1,3}| ?[^\sA-Za-z\d]|\s+")


def split_tokens(text: str) -> list[str]:
    """Split text into token strings whose concatenation is exactly the text."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    """How many tokens `split_tokens` makes of this text."""
    return len(split_tokens(text))


def count_request_tokens(body: dict[str, Any]) -> int:
    """Input tokens of a Messages request: system, every turn's content and the tool definitions."""
    parts: list[str] = []
    system = body.get("system")
    if system:
        parts.append(system if isinstance(system, str) else json.dumps(system))
    for message in body.get("messages") or []:
        content = message.get("content", "")
        parts.append(content if isinstance(content, str) else json.dumps(content))
    if body.get("tools"):
        parts.append(json.dumps(body["tools"]))
    # Each turn costs a few framing tokens on the real API too.
    return sum(count_tokens(p) for p in parts) + 3 * len(body.get("messages") or []) + 1
