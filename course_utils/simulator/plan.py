"""From a reply to the bytes on the wire: truncation by `max_tokens` and stop sequences, delta sizes and pacing."""

from __future__ import annotations

import json
import math
import random
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import jiter

from . import signing, wire
from .replies import Reply, request_seed
from .thinking import thinking_mode
from .tokens import count_request_tokens, count_tokens, split_tokens

FIRST_TOKEN_SECONDS = (0.3, 0.8)
TOKENS_PER_SECOND = (50.0, 80.0)


def check_speed(speed: object, name: str = "speed") -> float:
    """The speed if it is a finite number >= 0, else a ValueError saying what is accepted."""
    if not (isinstance(speed, (int, float)) and not isinstance(speed, bool) and math.isfinite(speed) and speed >= 0):
        raise ValueError(f"{name} must be a number >= 0 (1 real-time, 2 twice as fast, 0 no delay), got {speed!r}")
    return float(speed)


@dataclass
class Step:
    """One write to the socket: wait `delay` seconds, then send `data`; `tokens` is the output sent so far."""

    delay: float
    data: bytes
    tokens: int
    checkpoint: bool = False  # a mid-stream fault may strike just before this step
    last_checkpoint: bool = False  # ...and strikes here at the latest


@dataclass
class Block:
    """One content block of the reply as the stream carries it: its start, its deltas and their timing."""

    kind: str  # "thinking", "redacted_thinking", "text" or "tool_use"
    start: dict[str, Any]  # the `content_block` of `content_block_start`
    # ("text" | "json" | "thinking" | "signature" | "citation", payload) in the order they are sent
    deltas: list[tuple[str, Any]] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)  # output tokens each delta completes
    delays: list[float] = field(default_factory=list)  # seconds before each delta

    def chunks(self, kind: str) -> list[str]:
        """The payloads of this block's deltas of one kind."""
        return [payload for k, payload in self.deltas if k == kind]

    def final(self) -> dict[str, Any]:
        """The block as a complete Message carries it."""
        if self.kind == "text":
            citations = self.chunks("citation")
            block: dict[str, Any] = {"type": "text", "text": "".join(self.chunks("text"))}
            return {**block, "citations": citations} if citations else block
        if self.kind == "tool_use":
            raw = "".join(self.chunks("json"))
            return {**self.start, "input": jiter.from_json(raw.encode(), partial_mode=True) if raw else {}}
        if self.kind == "thinking":
            signature = self.chunks("signature")
            return {
                "type": "thinking",
                "thinking": "".join(self.chunks("thinking")),
                "signature": signature[-1] if signature else "",
            }
        return dict(self.start)


@dataclass
class Plan:
    """Everything the simulator will send for one request, decided before the first byte."""

    msg_id: str
    model: str
    input_tokens: int
    blocks: list[Block]
    stop_reason: str
    stop_sequence: str | None
    first_delay: float
    cache: dict[str, int] = field(default_factory=dict)  # cache_creation/read token counts, when caching applies
    future_events: bool = False  # add an event and a delta type the SDK does not know yet (opt-in)

    @property
    def delays(self) -> list[float]:
        """The delay before every delta, in the order they are sent."""
        return [d for block in self.blocks for d in block.delays]

    @property
    def output_tokens(self) -> int:
        """Tokens generated: thinking, text and tool JSON (the empty first JSON fragment is free)."""
        return sum(sum(block.sizes) for block in self.blocks)

    @property
    def thinking_tokens(self) -> int:
        """The output tokens spent thinking."""
        return sum(sum(b.sizes) for b in self.blocks if b.kind in ("thinking", "redacted_thinking"))

    def _first(self, kind: str) -> Block | None:
        return next((b for b in self.blocks if b.kind == kind), None)

    @property
    def text_chunks(self) -> list[str]:
        """The text deltas of the first text block."""
        block = self._first("text")
        return block.chunks("text") if block else []

    @property
    def text(self) -> str:
        """The full text of the reply's text blocks."""
        return "".join("".join(b.chunks("text")) for b in self.blocks if b.kind == "text")

    @property
    def tool(self) -> dict[str, Any] | None:
        """The first tool_use block's id and name (its `content_block_start` without the input)."""
        block = self._first("tool_use")
        return {k: v for k, v in block.start.items() if k != "input"} if block else None

    @property
    def json_chunks(self) -> list[str]:
        """The `input_json_delta` fragments of the first tool_use block."""
        block = self._first("tool_use")
        return block.chunks("json") if block else []

    def content(self) -> list[dict[str, Any]]:
        """The final content blocks, as a non-streaming response carries them."""
        return [block.final() for block in self.blocks]

    def usage(self, output_tokens: int, *, details: bool = True) -> dict[str, Any]:
        """The usage object, with this request's cache fields (and its thinking tokens, once they are known)."""
        thinking = self.thinking_tokens if details and self.thinking_tokens else None
        return wire.usage(self.input_tokens, output_tokens, thinking_tokens=thinking, **self.cache)

    def message(self, *, final: bool) -> dict[str, Any]:
        """The Message object: empty with a placeholder usage for `message_start`, complete for a JSON reply."""
        if not final:
            return wire.message(
                msg_id=self.msg_id,
                model=self.model,
                content=[],
                stop_reason=None,
                stop_sequence=None,
                usage=self.usage(1, details=False),
            )
        return wire.message(
            msg_id=self.msg_id,
            model=self.model,
            content=self.content(),
            stop_reason=self.stop_reason,
            stop_sequence=self.stop_sequence,
            usage=self.usage(self.output_tokens),
        )

    def total_seconds(self) -> float:
        """How long the whole answer takes to generate at this plan's pacing."""
        return self.first_delay + sum(self.delays)


def _chunks(tokens: list[str], rng: random.Random, low: int, high: int) -> tuple[list[str], list[int]]:
    """Group tokens into deltas of `low`..`high` tokens, as the API groups them; returns the deltas and their sizes."""
    pieces, sizes, i = [], [], 0
    while i < len(tokens):
        n = min(rng.randint(low, high), len(tokens) - i)
        pieces.append("".join(tokens[i : i + n]))
        sizes.append(n)
        i += n
    return pieces, sizes


def _inner_cuts(tool_input: dict[str, Any], rng: random.Random) -> set[int]:
    """Offsets strictly inside the first key and the first value of `json.dumps(tool_input)`.

    The real API cuts `partial_json` anywhere, including inside keys and string values; cutting there on purpose
    means every tool call exercises the client code that has to cope with it.
    """
    if not tool_input:
        return set()
    key, value = next(iter(tool_input.items()))
    key_json, value_json = json.dumps(key), json.dumps(value)
    cuts = set()
    if len(key_json) >= 4:  # at least two characters between the quotes
        cuts.add(2 + rng.randint(1, len(key_json) - 3))  # '{"' precedes the key's first character
    start = 1 + len(key_json) + 2  # after '{', the key and ': '
    inner = (1, len(value_json) - 1) if isinstance(value, str) else (0, len(value_json))
    if inner[1] - inner[0] >= 2:
        cuts.add(start + inner[0] + rng.randint(1, inner[1] - inner[0] - 1))
    return cuts


def _json_fragments(tool_input: dict[str, Any], tokens: list[str], rng: random.Random) -> tuple[list[str], list[int]]:
    """The tool input's JSON as `input_json_delta` fragments (after the empty first one), with the tokens each ends."""
    raw = "".join(tokens)
    ends, offset = [], 0
    for token in tokens:
        offset += len(token)
        ends.append(offset)
    group_ends, i = [], 0
    while i < len(tokens):
        i = min(i + rng.randint(2, 5), len(tokens))
        group_ends.append(ends[i - 1])
    cuts = sorted({c for c in _inner_cuts(tool_input, rng) if 0 < c < len(raw)} | set(group_ends))
    pieces, sizes, previous, done = [], [], 0, 0
    for cut in cuts:
        pieces.append(raw[previous:cut])
        completed = bisect_right(ends, cut)  # tokens that end at or before the cut
        sizes.append(completed - done)
        previous, done = cut, completed
    return pieces, sizes


def _delays(sizes: list[int], chunks: list[Any], rate: float, rng: random.Random, scale: float) -> list[float]:
    # A fragment cut mid-token still takes a moment to arrive; only an empty fragment is instant.
    return [
        max(n, 0.5 if chunk else 0) / rate * rng.uniform(0.6, 1.4) * scale
        for n, chunk in zip(sizes, chunks, strict=True)
    ]


def _thinking_block(
    reply: Reply, body: dict[str, Any], budget: int, rng: random.Random, scale: float
) -> tuple[Block, int]:
    """The thinking (or redacted_thinking) block, cut at `budget` tokens; returns it and the tokens it spent."""
    mode = thinking_mode(body)
    thought = reply.thinking or ""
    if reply.redacted:
        spent = min(count_tokens(thought), budget)
        data = signing.redacted_data(f"{request_seed(body)}:{thought}")
        # No deltas: the whole block arrives in its start event; its tokens are counted when it stops.
        return Block("redacted_thinking", {"type": "redacted_thinking", "data": data}, sizes=[spent]), spent
    tokens = split_tokens(thought)
    if mode and mode.budget is not None:
        tokens = tokens[: mode.budget]
    tokens = tokens[:budget]
    text = "".join(tokens)
    chunks, sizes = _chunks(tokens, rng, 3, 9)
    rate = rng.uniform(*TOKENS_PER_SECOND)
    delays = _delays(sizes, chunks, rate, rng, scale)
    block = Block("thinking", {"type": "thinking", "thinking": "", "signature": ""})
    if mode and mode.display == "omitted":
        # The text is withheld but was still generated: the pause (and the bill) stay, one signature is sent.
        block.deltas, block.sizes, block.delays = (
            [("signature", signing.sign_thinking(text))],
            [len(tokens)],
            [sum(delays)],
        )
        return block, len(tokens)
    block.deltas = [("thinking", c) for c in chunks] + [("signature", signing.sign_thinking(text))]
    block.sizes, block.delays = sizes + [0], delays + [0.0]
    return block, len(tokens)


def _cited_blocks(reply: Reply, tokens_left: int, rng: random.Random) -> list[Block]:
    """One text block per segment of a cited answer; a citation arrives just before the text it supports."""
    blocks, used = [], 0
    for segment in reply.segments or []:
        tokens = split_tokens(segment.text)[: max(tokens_left - used, 0)]
        if not tokens:
            break
        block = Block("text", {"type": "text", "text": ""})
        if segment.citation is not None:
            block.deltas.append(("citation", segment.citation))
            block.sizes.append(0)
        chunks, sizes = _chunks(tokens, rng, 1, 3)
        block.deltas += [("text", c) for c in chunks]
        block.sizes += sizes
        blocks.append(block)
        used += len(tokens)
    return blocks


def make_plan(
    body: dict[str, Any],
    reply: Reply,
    *,
    msg_id: str,
    model: str,
    speed: float,
    cache: dict[str, int] | None = None,
    input_tokens: int | None = None,
    future_events: bool = False,
) -> Plan:
    """Apply stop sequences and `max_tokens` to the reply, cut it into blocks of deltas and schedule them."""
    rng = random.Random(request_seed(body) ^ 0x5EED)
    thinking_rng = random.Random(request_seed(body) ^ 0x7A1C)  # apart, so replies without thinking keep their pacing
    scale = 0.0 if speed == 0 else 1.0 / speed
    text, tool_calls = reply.text, reply.tool_calls
    stop_reason, stop_sequence = reply.stop_reason, None
    budget = body["max_tokens"]

    blocks: list[Block] = []
    if reply.thinking is not None and budget > 0:
        block, spent = _thinking_block(reply, body, budget, thinking_rng, scale)
        blocks.append(block)
        budget -= spent
        if budget <= 0:
            stop_reason, text, tool_calls = "max_tokens", "", []

    hits = [(text.find(s), s) for s in body.get("stop_sequences") or [] if s in text]
    if hits:
        index, stop_sequence = min(hits)
        text, tool_calls, stop_reason = text[:index], [], "stop_sequence"

    text_tokens = split_tokens(text)
    json_tokens = [split_tokens(json.dumps(call.input)) for call in tool_calls]
    if budget <= 0 or len(text_tokens) + sum(map(len, json_tokens)) > budget:
        stop_reason, stop_sequence = "max_tokens", None
        budget = max(budget, 0)
        if len(text_tokens) >= budget:
            text_tokens, json_tokens, tool_calls = text_tokens[:budget], [], []
        else:
            left, kept = budget - len(text_tokens), []
            for tokens in json_tokens:
                if left <= 0:
                    break
                kept.append(tokens[:left])
                left -= len(tokens)
            json_tokens, tool_calls = kept, tool_calls[: len(kept)]

    if reply.segments is not None and not hits:
        text_blocks = _cited_blocks(reply, len(text_tokens) if stop_reason == "max_tokens" else budget, rng)
    else:
        chunks, sizes = _chunks(text_tokens, rng, 1, 3)
        text_blocks = [Block("text", {"type": "text", "text": ""}, [("text", c) for c in chunks], sizes)]
    text_chunks = [payload for block in text_blocks for _, payload in block.deltas]
    text_sizes = [n for block in text_blocks for n in block.sizes]
    tool_blocks = []
    for call, tokens in zip(tool_calls, json_tokens, strict=True):
        pieces, sizes = _json_fragments(call.input, tokens, rng)
        tool_blocks.append(
            Block(
                "tool_use",
                {"type": "tool_use", "id": call.id, "name": call.name, "input": {}},
                [("json", p) for p in [""] + pieces],
                [0] + sizes,
            )
        )

    rate = rng.uniform(*TOKENS_PER_SECOND)
    all_sizes = text_sizes + [n for b in tool_blocks for n in b.sizes]
    all_chunks = text_chunks + [p for b in tool_blocks for _, p in b.deltas]
    delays = iter(_delays(all_sizes, all_chunks, rate, rng, scale))
    for block in text_blocks + tool_blocks:
        block.delays = [next(delays) for _ in block.deltas]
    # A text block comes first unless there is nothing to say before a tool call (forced tool use), or nothing
    # at all because the budget ran out (max_tokens 0, or spent on thinking).
    if any(block.deltas for block in text_blocks) or not (tool_blocks or blocks or body["max_tokens"] == 0):
        blocks += text_blocks
    blocks += tool_blocks
    if body["max_tokens"] == 0:
        stop_reason, stop_sequence = "max_tokens", None
    return Plan(
        msg_id=msg_id,
        model=model,
        input_tokens=count_request_tokens(body) if input_tokens is None else input_tokens,
        blocks=blocks,
        stop_reason=stop_reason,
        stop_sequence=stop_sequence,
        first_delay=rng.uniform(*FIRST_TOKEN_SECONDS) * scale,
        cache=dict(cache or {}),
        future_events=future_events,
    )


def _delta_bytes(index: int, kind: str, payload: Any) -> bytes:
    if kind == "text":
        return wire.text_delta(index, payload)
    if kind == "json":
        return wire.json_delta(index, payload)
    if kind == "thinking":
        return wire.thinking_delta(index, payload)
    if kind == "signature":
        return wire.signature_delta(index, payload)
    return wire.citations_delta(index, payload)


def stream_steps(plan: Plan) -> Iterator[Step]:
    """The stream's events in the API's order, each with the delay before it."""
    sent = 0
    yield Step(plan.first_delay, wire.message_start(plan.message(final=False)), 0)
    for index, block in enumerate(plan.blocks):
        yield Step(0.0, wire.block_start(index, block.start), sent)
        if index == 0:
            yield Step(0.0, wire.PING, 0)
        if plan.future_events and block.kind == "text":
            yield Step(0.0, wire.future_delta(index), sent)
        # Not strict: a redacted_thinking block has sizes but no deltas (its tokens are counted below).
        for (kind, payload), size, delay in zip(block.deltas, block.sizes, block.delays, strict=False):
            sent += size
            yield Step(delay, _delta_bytes(index, kind, payload), sent, checkpoint=True)
        if block.kind == "redacted_thinking":
            sent += sum(block.sizes)
        yield Step(0.0, wire.block_stop(index), sent)
        if plan.future_events and index == 0:
            yield Step(0.0, wire.future_event(), sent)
    if not plan.blocks:
        yield Step(0.0, wire.PING, 0)
    # The last checkpoint: a mid-stream fault asked for after more tokens than the reply has strikes here.
    yield Step(
        0.0,
        wire.message_delta(plan.stop_reason, plan.stop_sequence, plan.usage(sent)),
        sent,
        checkpoint=True,
        last_checkpoint=True,
    )
    yield Step(0.0, wire.message_stop(), sent)
