"""Tools in the simulator: which offered tool a prompt calls for, with what input, and how results are answered.

Deterministic: the same prompt and tools give the same calls. A prompt that asks for several things a tool answers
("the weather in Paris and in Tokyo") gets parallel calls in one turn, unless `disable_parallel_tool_use` is set.
Arithmetic ("What is 17 * 23?", "17 times 23") goes to an offered calculator-like tool with the expression as its
input; a `lookup_*` tool gets the place after "of"; answers after tool results say what was asked and what came back.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .content import request_text
from .wire import make_id

_WORD = re.compile(r"[a-z][a-z']+")


@dataclass
class ToolCall:
    """A tool_use block the simulator decided to emit."""

    id: str
    name: str
    input: dict[str, Any]


_FILLER = re.compile(r"\b(what|what's|is|the|a|an|in|at|for|of|please|tell|me|can|you|could|today|now|like|it)\b", re.I)

# Arithmetic in a prompt: "17 * 23", "(2 + 3) x 4", "17 times 23", "what is 2 to the power of 10".
_SPOKEN_OPERATORS = {
    "times": "*",
    "multiplied by": "*",
    "plus": "+",
    "minus": "-",
    "divided by": "/",
    "to the power of": "**",
    "x": "*",
    "×": "*",
    "÷": "/",
}
_SPOKEN = re.compile(
    r"(?<=[\d)\s])("
    + "|".join(sorted((re.escape(k) for k in _SPOKEN_OPERATORS), key=len, reverse=True))
    + r")(?=[\s(\d])"
)
_EXPRESSION = re.compile(r"[-(]*\s*\d[\d.,_]*(?:\s*(?:\*\*|[-+*/%^])\s*[-(]*\s*\d[\d.,_]*\s*\)*)+\)*")
_MATH_WORDS = {
    "calculator",
    "calculate",
    "calc",
    "math",
    "maths",
    "arithmetic",
    "evaluate",
    "compute",
    "expression",
    "expressions",
    "sum",
    "multiply",
}
_EXPRESSION_FIELDS = ("expression", "expr", "formula", "calculation", "equation", "math")
_PLACE_FIELDS = ("location", "city", "place")


def expression_in(text: str) -> str | None:
    """The arithmetic the text asks for, with spoken operators as symbols ("17 times 23" -> "17 * 23"), or None."""
    spoken = _SPOKEN.sub(lambda m: _SPOKEN_OPERATORS[m.group(1)], text)
    found = [m.group(0).strip() for m in _EXPRESSION.finditer(spoken)]
    found = [e.rstrip(",.") for e in found if re.search(r"\d\s*(\*\*|[-+*/%^])\s*[-(]*\s*\d", e)]
    if not found:
        return None
    spaced = re.sub(r"\s*(\*\*|[-+*/%^])\s*", r" \1 ", max(found, key=len))
    tidy = " ".join(spaced.split()).replace("( ", "(").replace(" )", ")")
    # A minus that starts the expression or follows an operator is a sign: "-5 + 3", "3 * -2", "(-1)".
    return re.sub(r"(^|[-+*/%^(] |\()- (?=\d|\()", r"\1-", tidy)


def _is_calculator(tool: dict[str, Any]) -> bool:
    words = set(re.split(r"[_\W]+", str(tool.get("name", "")).lower()))
    words |= set(_WORD.findall(str(tool.get("description", "")).lower()))
    return bool(words & _MATH_WORDS)


def choose_tool(text: str, tools: list[dict[str, Any]], tool_choice: dict[str, Any] | None) -> dict[str, Any] | None:
    """The offered tool the prompt calls for, honouring `tool_choice`."""
    chosen = tool_choice or {}
    choice = chosen.get("type", "auto")
    if choice == "none" or not tools:
        return None
    if choice == "tool":
        return next((t for t in tools if t.get("name") == chosen.get("name")), None)
    words = set(_WORD.findall(text.lower()))
    best, best_score = None, 0
    if expression_in(text) is not None:  # arithmetic goes to a calculator, when one is offered
        best = next((t for t in tools if _is_calculator(t)), None)
        if best is not None:
            return best
    for tool in tools:
        name_words = set(str(tool.get("name", "")).lower().replace("-", "_").split("_")) - {"get", "fetch", "do"}
        desc_words = set(_WORD.findall(str(tool.get("description", "")).lower())) - {"the", "a", "an", "of", "for"}
        score = 3 * len(words & name_words) + len(words & desc_words & {w for w in words if len(w) > 4})
        if score > best_score:
            best, best_score = tool, score
    if best is None and choice == "any":
        best = tools[0]
    return best


def _place(text: str) -> str | None:
    """A capitalised place name after 'in', 'at', 'for' or 'to'."""
    match = re.search(r"\b(?:in|at|for|to|near|of)\s+([A-Z][a-zA-Z\-]+(?:[ ,]+[A-Z][a-zA-Z\-]+)*)", text)
    return match.group(1).strip(" ,") if match else None


def fill_input(schema: dict[str, Any], text: str) -> dict[str, Any]:
    """Arguments for a tool call, from its input schema and the prompt."""
    props: dict[str, Any] = schema.get("properties") or {}
    required = schema.get("required") or list(props)
    numbers = re.findall(r"-?\d+(?:\.\d+)?", text)
    result: dict[str, Any] = {}
    for name in [n for n in props if n in required]:
        spec = props[name] or {}
        kind = spec.get("type", "string")
        if "enum" in spec:
            result[name] = next((v for v in spec["enum"] if str(v).lower() in text.lower()), spec["enum"][0])
        elif kind in ("number", "integer"):
            value = float(numbers.pop(0)) if numbers else 1
            result[name] = int(value) if kind == "integer" else value
        elif kind == "boolean":
            result[name] = True
        elif kind == "array":
            result[name] = [w for w in _WORD.findall(text.lower()) if len(w) > 3][:3]
        elif kind == "object":
            result[name] = {}
        elif any(k in name.lower() for k in _EXPRESSION_FIELDS) and expression_in(text):
            result[name] = expression_in(text)
        elif any(k in name.lower() for k in ("location", "city", "place", "where", "destination")):
            result[name] = _place(text) or "San Francisco, CA"
        else:
            cleaned = " ".join(_FILLER.sub(" ", text).split()).strip(" ?.!")
            result[name] = cleaned or text.strip()
    return result


def tool_intro(tool: dict[str, Any], args: dict[str, Any]) -> str:
    """The sentence the model says before a tool call."""
    parts = str(tool.get("name", "tool")).split("_")
    place = next((v for k, v in args.items() if isinstance(v, str) and k.lower() in _PLACE_FIELDS), None)
    expression = next((v for k, v in args.items() if isinstance(v, str) and k.lower() in _EXPRESSION_FIELDS), None)
    if _is_calculator(tool) and expression:
        return f"Let me calculate {expression}."
    if parts[0] in ("lookup", "look") and len(parts) > 1 and place:
        return f"Let me look up the {' '.join(p for p in parts[1:] if p != 'up')} of {place}."
    if parts[0] in ("get", "fetch", "lookup", "search", "find", "check") and len(parts) > 1:
        subject = " ".join(parts[1:])
        return f"Let me check the {subject} in {place}." if place else f"Let me look up the {subject} for you."
    return f"I'll use the {tool.get('name')} tool for that."


def answer_tool_results(results: list[dict[str, Any]], messages: list[dict[str, Any]]) -> str:
    """A text answer that uses what the tools returned."""
    names: dict[str, str] = {}
    inputs: dict[str, dict[str, Any]] = {}
    for message in messages:
        if message.get("role") == "assistant" and isinstance(message.get("content"), list):
            for block in message["content"]:
                if isinstance(block, dict) and block.get("type") == "tool_use":
                    names[block.get("id", "")] = block.get("name", "the tool")
                    given = block.get("input")
                    inputs[block.get("id", "")] = given if isinstance(given, dict) else {}
    sentences = []
    for result in results:
        content = result.get("content")
        value = request_text(content) if isinstance(content, list) else str(content if content is not None else "")
        name = names.get(result.get("tool_use_id", ""), "the tool")
        if result.get("is_error"):
            sentences.append(f"The {name} call failed ({value.strip()}), so I can't answer that part reliably.")
        else:
            sentences.append(_answer_sentence(name, inputs.get(result.get("tool_use_id", ""), {}), value.strip()))
    sentences.append("Let me know if you'd like me to look anything else up.")
    return " ".join(s.replace("..", ".") for s in sentences)


def _answer_sentence(name: str, args: dict[str, Any], value: str) -> str:
    """One sentence that reports a tool's result in terms of what was asked ("17 * 23 = 391")."""
    expression = next((v for k, v in args.items() if isinstance(v, str) and k.lower() in _EXPRESSION_FIELDS), None)
    if expression is not None and expression_in(expression):
        return f"According to {name}, {expression} = {value}."
    parts = [p for p in name.split("_") if p not in ("get", "fetch", "lookup", "look", "up", "find", "check")]
    place = next((v for k, v in args.items() if isinstance(v, str) and k.lower() in _PLACE_FIELDS), None)
    if name.split("_")[0] in ("lookup", "look") and parts and place:
        return f"According to {name}, the {' '.join(parts)} of {place} is {value}."
    if name.split("_")[0] in ("get", "fetch", "check") and parts and place:
        return f"According to {name}, the {' '.join(parts)} in {place} is {value}."
    return f"According to {name}, the result is: {value}."


def parallel_calls(
    prompt: str, tools: list[dict[str, Any]], tool_choice: dict[str, Any] | None, seed: str
) -> list[ToolCall]:
    """Two or more tool calls when the prompt asks for several things a tool answers ("in Paris and in Tokyo")."""
    if (tool_choice or {}).get("disable_parallel_tool_use") or (tool_choice or {}).get("type") in ("none", "tool"):
        return []
    clauses = [c for c in re.split(r"\band\b|[,;]|\?\s+|\balso\b", prompt) if c.strip()]
    calls: list[ToolCall] = []
    seen: set[str] = set()
    previous: dict[str, Any] | None = None
    for clause in clauses:
        tool = choose_tool(clause, tools, {"type": "auto"})
        if tool is None and previous is not None and re.search(r"\b[A-Z][a-z]+|\d", clause):
            tool = previous  # "...in Paris and in Tokyo": the second clause asks the same tool about another thing
        if tool is None:
            continue
        previous = tool
        args = fill_input(tool.get("input_schema") or {}, clause)
        key = json.dumps([tool["name"], args], sort_keys=True)
        if key not in seen:
            seen.add(key)
            calls.append(ToolCall(id=tool_id(f"{seed}:{len(calls)}" if calls else seed), name=tool["name"], input=args))
    return calls if len(calls) > 1 else []


def tool_id(seed: str) -> str:
    """A tool_use id (`toolu_01…`) derived from a seed, so equal requests get equal ids."""
    return make_id("toolu_", seed)
