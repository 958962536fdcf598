"""From a reply to the bytes on the wire: truncation by `max_tokens` and stop sequences, delta sizes and pacing."""

from __future__ import annotations

import json
import math
import random
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, Iterator

import jiter

from . import wire
from .replies import Reply, request_seed
from .tokens import count_request_tokens, split_tokens

FIRST_TOKEN_SECONDS = (0.3, 0.8)
TOKENS_PER_SECOND = (50.0, 80.0)


def check_speed(speed: float, name: str = "speed") -> float:
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
class Plan:
    """Everything the simulator will send for one request, decided before the first byte."""

    msg_id: str
    model: str
    input_tokens: int
    text_chunks: list[str]
    tool: dict[str, Any] | None
    json_chunks: list[str]
    stop_reason: str
    stop_sequence: str | None
    first_delay: float
    delays: list[float] = field(default_factory=list)
    # Output tokens each delta completes, text deltas then JSON deltas: a JSON fragment cut mid-token completes none.
    chunk_tokens: list[int] = field(default_factory=list)

    @property
    def output_tokens(self) -> int:
        """Tokens generated: text plus tool JSON (the empty first JSON fragment is free)."""
        return sum(self.chunk_tokens)

    @property
    def text(self) -> str:
        """The text block's full text."""
        return "".join(self.text_chunks)

    def content(self) -> list[dict[str, Any]]:
        """The final content blocks, as a non-streaming response carries them."""
        blocks: list[dict[str, Any]] = [{"type": "text", "text": self.text}]
        if self.tool is not None:
            raw = "".join(self.json_chunks)
            parsed = jiter.from_json(raw.encode(), partial_mode=True) if raw else {}
            blocks.append({**self.tool, "input": parsed})
        return blocks

    def message(self, *, final: bool) -> dict[str, Any]:
        """The Message object: empty with a placeholder usage for `message_start`, complete for a JSON reply."""
        if not final:
            return wire.message(msg_id=self.msg_id, model=self.model, content=[], stop_reason=None,
                                stop_sequence=None, input_tokens=self.input_tokens, output_tokens=1)
        return wire.message(msg_id=self.msg_id, model=self.model, content=self.content(),
                            stop_reason=self.stop_reason, stop_sequence=self.stop_sequence,
                            input_tokens=self.input_tokens, output_tokens=self.output_tokens)

    def total_seconds(self) -> float:
        """How long the whole answer takes to generate at this plan's pacing."""
        return self.first_delay + sum(self.delays)


def _chunks(tokens: list[str], rng: random.Random, low: int, high: int) -> tuple[list[str], list[int]]:
    """Group tokens into deltas of `low`..`high` tokens, as the API groups them; returns the deltas and their sizes."""
    pieces, sizes, i = [], [], 0
    while i < len(tokens):
        n = min(rng.randint(low, high), len(tokens) - i)
        pieces.append("".join(tokens[i:i + n]))
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
    cuts = sorted(({c for c in _inner_cuts(tool_input, rng) if 0 < c < len(raw)} | set(group_ends)))
    pieces, sizes, previous, done = [], [], 0, 0
    for cut in cuts:
        pieces.append(raw[previous:cut])
        completed = bisect_right(ends, cut)  # tokens that end at or before the cut
        sizes.append(completed - done)
        previous, done = cut, completed
    return pieces, sizes


def make_plan(body: dict[str, Any], reply: Reply, *, msg_id: str, model: str, speed: float) -> Plan:
    """Apply stop sequences and `max_tokens` to the reply, cut it into deltas and schedule them."""
    rng = random.Random(request_seed(body) ^ 0x5EED)
    text, tool_call = reply.text, reply.tool_call
    stop_reason, stop_sequence = reply.stop_reason, None

    hits = [(text.find(s), s) for s in body.get("stop_sequences") or [] if s in text]
    if hits:
        index, stop_sequence = min(hits)
        text, tool_call, stop_reason = text[:index], None, "stop_sequence"

    text_tokens = split_tokens(text)
    json_tokens = split_tokens(json.dumps(tool_call.input)) if tool_call else []
    budget = body["max_tokens"]
    if len(text_tokens) + len(json_tokens) > budget:
        stop_reason, stop_sequence = "max_tokens", None
        if len(text_tokens) >= budget:
            text_tokens, json_tokens, tool_call = text_tokens[:budget], [], None
        else:
            json_tokens = json_tokens[: budget - len(text_tokens)]

    text_chunks, text_sizes = _chunks(text_tokens, rng, 1, 3)
    json_chunks, json_sizes = ([""], [0]) if tool_call else ([], [])
    if tool_call:
        pieces, sizes = _json_fragments(tool_call.input, json_tokens, rng)
        json_chunks, json_sizes = json_chunks + pieces, json_sizes + sizes
    tool = {"type": "tool_use", "id": tool_call.id, "name": tool_call.name} if tool_call else None

    scale = 0.0 if speed == 0 else 1.0 / speed
    rate = rng.uniform(*TOKENS_PER_SECOND)
    sizes = text_sizes + json_sizes
    # A fragment cut mid-token still takes a moment to arrive; only the empty first JSON fragment is instant.
    delays = [max(n, 0.5 if chunk else 0) / rate * rng.uniform(0.6, 1.4) * scale
              for n, chunk in zip(sizes, text_chunks + json_chunks)]
    return Plan(msg_id=msg_id, model=model, input_tokens=count_request_tokens(body), text_chunks=text_chunks,
                tool=tool, json_chunks=json_chunks, stop_reason=stop_reason, stop_sequence=stop_sequence,
                first_delay=rng.uniform(*FIRST_TOKEN_SECONDS) * scale, delays=delays, chunk_tokens=sizes)


def stream_steps(plan: Plan) -> Iterator[Step]:
    """The stream's events in the API's order, each with the delay before it."""
    delays, sizes = iter(plan.delays), iter(plan.chunk_tokens)
    sent = 0
    yield Step(plan.first_delay, wire.message_start(plan.message(final=False)), 0)
    yield Step(0.0, wire.block_start(0, {"type": "text", "text": ""}), 0)
    yield Step(0.0, wire.PING, 0)
    for chunk in plan.text_chunks:
        sent += next(sizes)
        yield Step(next(delays), wire.text_delta(0, chunk), sent, checkpoint=True)
    yield Step(0.0, wire.block_stop(0), sent)
    if plan.tool is not None:
        yield Step(0.0, wire.block_start(1, {**plan.tool, "input": {}}), sent)
        for chunk in plan.json_chunks:
            sent += next(sizes)
            yield Step(next(delays), wire.json_delta(1, chunk), sent, checkpoint=True)
        yield Step(0.0, wire.block_stop(1), sent)
    # The last checkpoint: a mid-stream fault asked for after more tokens than the reply has strikes here.
    yield Step(0.0, wire.message_delta(plan.stop_reason, plan.stop_sequence, plan.input_tokens, sent), sent,
               checkpoint=True, last_checkpoint=True)
    yield Step(0.0, wire.message_stop(), sent)
