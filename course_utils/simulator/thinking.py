"""Extended thinking: whether a request thinks, how its thinking is shown, and what the simulated model thinks.

The request rules (which types a model accepts, budgets, tool choice) live in `validation`; this module assumes a
valid request. What a model does when `thinking` is omitted, and its default `display`, come from the model
catalogue (`models.spec`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from . import models


@dataclass(frozen=True)
class Thinking:
    """How one request thinks: `enabled` (with a budget), `adaptive` or `between_tools`, and its display."""

    kind: str
    display: str  # "summarized" (the text streams) or "omitted" (empty text, a signature only)
    budget: int | None = None


def thinking_mode(body: dict[str, Any]) -> Thinking | None:
    """The request's thinking, or None when it does not think (thinking disabled, or omitted on a model that
    does not think by default)."""
    config = body.get("thinking")
    spec = models.spec(body["model"]) if hasattr(models, "spec") else None
    default_kind = getattr(spec, "thinking_default", "disabled") if spec else "disabled"
    default_display = getattr(spec, "display_default", "summarized") if spec else "summarized"
    if not isinstance(config, dict):
        return Thinking(default_kind, default_display) if default_kind != "disabled" else None
    kind = config.get("type")
    if kind == "disabled":
        return None
    # between_tools takes no `display`: its notes are progress updates written for the reader (SDK docstring).
    display = "summarized" if kind == "between_tools" else config.get("display") or default_display
    budget = config.get("budget_tokens") if kind == "enabled" else None
    return Thinking(str(kind), str(display), budget if isinstance(budget, int) else None)


def _short(text: str, limit: int = 110) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def compose_thinking(
    *,
    prompt: str,
    topic: dict[str, Any] | None,
    tool_calls: list[tuple[str, dict[str, Any]]],
    tool_results: list[str],
    kind: str,
) -> str:
    """The model's reasoning before it answers: step by step, about this prompt (as a summarized block shows it)."""
    if kind == "between_tools":
        done = "; ".join(_short(r, 60) for r in tool_results) or "the previous step"
        nxt = (
            f"next I call {', '.join(name for name, _ in tool_calls)}."
            if tool_calls
            else "that is everything I need, so I can write the answer now."
        )
        return f"Got the tool result ({done}); {nxt}"
    lines = [f'The user asks: "{_short(prompt)}"' if prompt else "The user sent a message with no text."]
    if tool_results:
        lines.append("1. The tools have answered: " + "; ".join(_short(r, 80) for r in tool_results) + ".")
        lines.append("2. I should base the answer on these results rather than on what I remember.")
        lines.append("3. Check that each part of the question is covered by a result, then answer plainly.")
        return "\n".join(lines)
    if tool_calls:
        calls = ", ".join(f"{name} with {json.dumps(args, ensure_ascii=False)}" for name, args in tool_calls)
        lines.append("1. This needs information I cannot know from training alone, and a tool offers it.")
        lines.append(f"2. The right call{'s are' if len(tool_calls) > 1 else ' is'} {calls}.")
        if len(tool_calls) > 1:
            lines.append("3. The calls are independent, so I can make them in parallel in one turn.")
        else:
            lines.append("3. Once the result comes back I can answer from it.")
        return "\n".join(lines)
    if topic:
        lines.append(f"1. This is about {topic['title']}.")
        lines.append(f"2. The key fact to start from: {topic['sentences'][0]}")
        lines.append("3. A few clear sentences should cover it; lead with the definition, then why it matters.")
    else:
        lines.append("1. There is no specialised topic here, so a short, direct reply fits.")
        lines.append("2. Answer what was asked, and say plainly what I do not know.")
    lines.append("4. Check the answer against the question before writing it.")
    return "\n".join(lines)
