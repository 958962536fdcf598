"""From a reply to the bytes on the wire: truncation by `max_tokens` and stop sequences, delta sizes and pacing."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any, Iterator

import jiter

from . import wire
from .replies import Reply, request_seed
from .tokens import count_request_tokens, split_tokens

FIRST_TOKEN_SECONDS = (0.3, 0.8)
TOKENS_PER_SECOND = (50.0, 80.0)


@dataclass
class Step:
    """One write to the socket: wait `delay` seconds, then send `data`; `tokens` is the output sent so far."""

    delay: float
    data: bytes
    tokens: int
    checkpoint: bool = False  # a mid-stream fault may strike just before this step


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

    @property
    def output_tokens(self) -> int:
        """Tokens generated: text plus tool JSON (the empty first JSON fragment is free)."""
        return sum(len(split_tokens(c)) for c in self.text_chunks + self.json_chunks)

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


def _chunks(tokens: list[str], rng: random.Random, low: int, high: int) -> list[str]:
    """Group tokens into deltas of `low`..`high` tokens, as the API groups them."""
    out, i = [], 0
    while i < len(tokens):
        n = rng.randint(low, high)
        out.append("".join(tokens[i:i + n]))
        i += n
    return out


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

    text_chunks = _chunks(text_tokens, rng, 1, 3)
    json_chunks = [""] + _chunks(json_tokens, rng, 2, 5) if tool_call else []
    tool = {"type": "tool_use", "id": tool_call.id, "name": tool_call.name} if tool_call else None

    scale = 0.0 if speed == 0 else 1.0 / speed
    rate = rng.uniform(*TOKENS_PER_SECOND)
    delays = [len(split_tokens(c)) / rate * rng.uniform(0.6, 1.4) * scale for c in text_chunks + json_chunks]
    return Plan(msg_id=msg_id, model=model, input_tokens=count_request_tokens(body), text_chunks=text_chunks,
                tool=tool, json_chunks=json_chunks, stop_reason=stop_reason, stop_sequence=stop_sequence,
                first_delay=rng.uniform(*FIRST_TOKEN_SECONDS) * scale, delays=delays)


def stream_steps(plan: Plan) -> Iterator[Step]:
    """The stream's events in the API's order, each with the delay before it."""
    delays = iter(plan.delays)
    sent = 0
    yield Step(plan.first_delay, wire.message_start(plan.message(final=False)), 0)
    yield Step(0.0, wire.block_start(0, {"type": "text", "text": ""}), 0)
    yield Step(0.0, wire.PING, 0)
    for chunk in plan.text_chunks:
        sent += len(split_tokens(chunk))
        yield Step(next(delays), wire.text_delta(0, chunk), sent, checkpoint=True)
    yield Step(0.0, wire.block_stop(0), sent)
    if plan.tool is not None:
        yield Step(0.0, wire.block_start(1, {**plan.tool, "input": {}}), sent)
        for chunk in plan.json_chunks:
            sent += len(split_tokens(chunk))
            yield Step(next(delays), wire.json_delta(1, chunk), sent, checkpoint=True)
        yield Step(0.0, wire.block_stop(1), sent)
    yield Step(0.0, wire.message_delta(plan.stop_reason, plan.stop_sequence, plan.input_tokens, sent), sent,
               checkpoint=True)
    yield Step(0.0, wire.message_stop(), sent)
