"""What the simulator says: deterministic, on-topic replies that depend on the whole conversation.

The same request always gets the same reply. The reply is built from a bundled corpus about the prompt's subject,
remembers facts the user stated in earlier turns (their name, where they live, their favourites), knows how many
turns came before, follows a few system-prompt styles, and calls an offered tool when the prompt asks for one.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from .citations import Segment, answer_from, documents
from .content import request_text, tool_results
from .memory import acknowledge, recall, remember
from .signing import REDACTED_TRIGGER
from .thinking import compose_thinking, thinking_mode
from .tokens import count_tokens
from .tools import ToolCall, answer_tool_results, choose_tool, fill_input, parallel_calls, tool_id, tool_intro


@dataclass
class Reply:
    """The full, untruncated answer: thinking (optional), some text, then optionally tool calls."""

    text: str
    tool_call: ToolCall | None = None
    facts: dict[str, str] = field(default_factory=dict)
    more_calls: list[ToolCall] = field(default_factory=list)  # parallel calls after the first, in order
    thinking: str | None = None  # the reasoning's full text; None when the request does not think
    redacted: bool = False  # the thinking comes back as a redacted_thinking block
    segments: list[Segment] | None = None  # the text as cited pieces, when the answer draws on documents

    @property
    def tool_calls(self) -> list[ToolCall]:
        """Every tool call of the reply, in order."""
        return ([self.tool_call] if self.tool_call else []) + self.more_calls

    @property
    def stop_reason(self) -> str:
        """`tool_use` when the reply ends in a tool call, else `end_turn`."""
        return "tool_use" if self.tool_call else "end_turn"


@lru_cache(maxsize=1)
def corpus() -> dict[str, Any]:
    """The bundled topic corpus (loaded once)."""
    return json.loads(resources.files(__package__).joinpath("corpus.json").read_text(encoding="utf-8"))


def request_seed(body: dict[str, Any]) -> int:
    """A seed that depends on everything that shapes the answer, so equal requests get equal replies."""
    keys = ("model", "system", "messages", "tools", "tool_choice", "max_tokens", "stop_sequences")
    canonical = json.dumps({k: body.get(k) for k in keys}, sort_keys=True, ensure_ascii=False)
    seed = int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:8], "big")
    if body.get("thinking") is not None:  # mixed in apart, so requests without it keep the seeds they always had
        thinking = json.dumps(body["thinking"], sort_keys=True).encode()
        seed ^= int.from_bytes(hashlib.sha256(thinking).digest()[:8], "big")
    return seed


# ---------------------------------------------------------------------------------------------------------------------
# Topics and styles.

_WORD = re.compile(r"[a-z][a-z']+")


def pick_topic(text: str) -> dict[str, Any] | None:
    """The corpus topic whose keywords best match the text, or None."""
    lowered = text.lower()
    words = set(_WORD.findall(lowered))
    best, best_score = None, 0
    for topic in corpus()["topics"]:
        score = 0
        for keyword in topic["keywords"]:
            if " " in keyword:
                score += 2 * (keyword in lowered)
            else:
                score += keyword in words
        if score > best_score:
            best, best_score = topic, score
    return best


def _requested_words(text: str) -> int | None:
    """A length the user asked for ("in 500 words", "300-word essay"), capped at 4,000."""
    match = re.search(r"\b(\d{2,4})[ -]?words?\b", text.lower())
    return min(int(match.group(1)), 4000) if match else None


def _sentences(pool: list[str], rng: random.Random, count: int) -> list[str]:
    """`count` sentences from the pool in a shuffled order, cycling when more are asked than exist."""
    out: list[str] = []
    while len(out) < count:
        batch = pool[:]
        rng.shuffle(batch)
        out.extend(batch)
    return out[:count]


def _prose(text: str, system: str, rng: random.Random, facts: dict[str, str], turn: int) -> str:
    """An answer made of corpus sentences about the prompt's subject."""
    data = corpus()
    topic = pick_topic(text)
    lowered, style = text.lower(), system.lower()
    target_words = _requested_words(text)
    if re.search(r"\b(poem|haiku|verse)\b", lowered):
        lines = data["poem_lines"].get(topic["name"] if topic else "general") or data["poem_lines"]["general"]
        return "\n".join(_sentences(lines, rng, 4))
    pool = topic["sentences"] if topic else data["general"]
    if target_words:
        # Enough sentences to reach the requested length; a long answer revisits its topic rather than drift off it.
        sentences: list[str] = []
        while sum(len(s.split()) for s in sentences) < target_words:
            sentences.extend(_sentences(pool, rng, len(pool)))
        body = " ".join(sentences)
        return " ".join(body.split()[:target_words]).rstrip(",;:") + ("" if body.endswith(".") else ".")
    brief = re.search(r"\b(one sentence|briefly|brief|short|concise|tl;?dr)\b", lowered + " " + style)
    count = 1 if brief else 3 + rng.randrange(3)
    sentences = _sentences(pool, rng, count)
    opener = ""
    if topic and not brief:
        opener = f"Here is an overview of {topic['title']}. " if turn == 1 else f"More on {topic['title']}: "
    elif not topic and not brief:
        opener = "That's a good question. "
    answer = opener + " ".join(sentences)
    if facts.get("name") and turn > 1:
        answer = f"Good question, {facts['name']}. " + answer
    return answer


def _count_to(text: str) -> str | None:
    """Counting prompts ("count from 1 to 20") answer with the numbers, handy for stop_sequences demos."""
    match = re.search(r"\bcount (?:from (\d+) )?(?:up )?to (\d+)", text.lower())
    if not match:
        return None
    start, end = int(match.group(1) or 1), int(match.group(2))
    end = min(end, start + 999)
    return ", ".join(str(n) for n in range(start, end + 1)) + "."


def _greeting(text: str, facts: dict[str, str], turn: int) -> str | None:
    """A reply to hello, including the user's name when they just gave it."""
    if not re.match(r"^\s*(hi|hello|hey|good (morning|afternoon|evening))\b", text.lower()):
        return None
    name = facts.get("name")
    hello = f"Hello, {name}! Nice to meet you." if name else "Hello!"
    if turn > 1:
        return f"{hello} We've exchanged {turn - 1} messages so far; what would you like to explore next?"
    return (
        f"{hello} I'm the course's offline stand-in for Claude: I answer from a small bundled corpus, "
        "so no API key or network is needed. Ask me about streaming, tokens, Python, or the ocean."
    )


def _apply_system_style(answer: str, system: str) -> str:
    """Follow the few system-prompt styles the simulator understands."""
    style = system.lower()
    persona = re.search(r"\byou are (?:a |an )?([A-Z][a-zA-Z]+)\b", system)
    if "pirate" in style:
        answer = "Arr, matey! " + answer.replace("you ", "ye ")
    elif persona and persona.group(1) not in {"Claude", "A", "An", "The"}:
        answer = f"{persona.group(1)} here. " + answer
    if re.search(r"\b(upper ?case|shout|all caps)\b", style):
        answer = answer.upper()
    return answer


def _json_answer(text: str, rng: random.Random) -> str:
    """A JSON object, for prompts or system prompts that ask for JSON (lesson 01's 'when not to stream')."""
    topic = pick_topic(text)
    sentences = _sentences(topic["sentences"] if topic else corpus()["general"], rng, 2)
    payload = {"topic": topic["title"] if topic else "general", "summary": sentences[0], "detail": sentences[1]}
    return json.dumps(payload, indent=2)


# ---------------------------------------------------------------------------------------------------------------------


def _continue_prefill(prefill: str, answer: str, json_answer: str | None) -> str:
    """The rest of an answer whose start the caller wrote (an assistant prefill): the reply goes on from it."""
    stripped = prefill.strip()
    for full in (json_answer, answer):
        if full and stripped and full.startswith(stripped) and len(full) > len(stripped):
            return full[len(stripped) :]
    if stripped.endswith(("{", "[")) and json_answer:
        return json_answer[1:] if json_answer.startswith(stripped[-1]) else json_answer
    answer = re.sub(r"^(Here is an overview of [^.]+\. |More on [^:]+: |That's a good question\. )", "", answer)
    if answer[:1].isupper() and stripped and stripped[-1] not in ".!?:\n":
        answer = answer[0].lower() + answer[1:]  # continuing a sentence the caller started
    return " " + answer


def _answer(body: dict[str, Any], tool_id_seed: str) -> tuple[Reply, str, dict[str, Any] | None]:
    """The reply without thinking, plus the prompt it answers and its topic (what the thinking is about)."""
    messages: list[dict[str, Any]] = body["messages"]
    system = body.get("system") or ""
    system = system if isinstance(system, str) else request_text(system)
    rng = random.Random(request_seed(body))
    user_texts = [request_text(m.get("content")) for m in messages if m.get("role") == "user"]
    user_texts = [t for t in user_texts if t] or [""]
    facts = remember(user_texts)
    turn = sum(1 for m in messages if m.get("role") == "user")
    last = messages[-1]

    if last.get("role") == "user" and tool_results(last.get("content")):
        reply = Reply(answer_tool_results(tool_results(last["content"]), messages), facts=facts)
        return reply, user_texts[-1], None

    prompt = request_text(last.get("content")) if last.get("role") == "user" else user_texts[-1]
    topic = pick_topic(prompt)
    tools, tool_choice = body.get("tools") or [], body.get("tool_choice")
    seed = tool_id_seed or str(request_seed(body))
    forced = (tool_choice or {}).get("type") in ("any", "tool")
    parallel = parallel_calls(prompt, tools, tool_choice, seed)
    if parallel:
        names = ", ".join(dict.fromkeys(c.name for c in parallel))
        intro = "" if forced else f"I'll make {len(parallel)} calls at once ({names})."
        return Reply(intro, tool_call=parallel[0], more_calls=parallel[1:], facts=facts), prompt, topic
    tool = choose_tool(prompt, tools, tool_choice)
    if tool is not None:
        args = fill_input(tool.get("input_schema") or {}, prompt)
        call = ToolCall(id=tool_id(seed), name=tool["name"], input=args)
        # Forced tool use starts with the tool_use block: there is no text before it.
        return Reply("" if forced else tool_intro(tool, args), tool_call=call, facts=facts), prompt, topic

    docs = documents(messages)
    if docs and last.get("role") == "user":
        segments = answer_from(docs, prompt)
        if segments:
            return Reply("".join(seg.text for seg in segments), facts=facts, segments=segments), prompt, topic

    wants_json = bool(re.search(r"\bjson\b", (prompt + " " + system).lower()))
    answer = (
        recall(prompt, facts, user_texts)
        or _greeting(prompt, facts, turn)
        or acknowledge(prompt)
        or _count_to(prompt)
        or (_json_answer(prompt, rng) if wants_json else None)
        or _prose(prompt, system, rng, facts, turn)
    )
    answer = _apply_system_style(answer, system)
    if last.get("role") == "assistant":
        json_answer = _json_answer(prompt, random.Random(request_seed(body))) if wants_json else None
        answer = _continue_prefill(request_text(last.get("content")), answer, json_answer)
    return Reply(answer, facts=facts), prompt, topic


def compose(body: dict[str, Any], tool_id_seed: str = "") -> Reply:
    """The reply to a validated Messages request body: its thinking (when the request thinks), text and tools."""
    reply, prompt, topic = _answer(body, tool_id_seed)
    mode = thinking_mode(body)
    if mode is None:
        return reply
    last = body["messages"][-1]
    results = (
        [
            request_text(r.get("content")) if isinstance(r.get("content"), list) else str(r.get("content") or "")
            for r in tool_results(last.get("content"))
        ]
        if last.get("role") == "user"
        else []
    )
    if mode.kind == "between_tools" and not results:
        return reply  # thinking is off; only the steps between tool calls are narrated
    if REDACTED_TRIGGER in prompt:
        reply.redacted = True
    calls = [(c.name, c.input) for c in reply.tool_calls]
    reply.thinking = compose_thinking(
        prompt=prompt, topic=topic, tool_calls=calls, tool_results=results, kind=mode.kind
    )
    return reply


def approximate_output_tokens(reply: Reply) -> int:
    """Output tokens of the full reply (text plus the tool call's JSON)."""
    tokens = count_tokens(reply.text)
    if reply.tool_call:
        tokens += count_tokens(json.dumps(reply.tool_call.input))
    return tokens
