"""A streaming agent loop: the model thinks, calls tools, reads their results and answers, all streamed (lesson 07).

    tools = [Tool("calculator", "Evaluate an arithmetic expression.", {"expression": "string"}, calculate)]
    run = await run_agent(course.async_client(), course.model, "What is 17 * 23?", tools, on_event=print_event)
    run.text, run.stopped_by, run.steps, run.messages  # the answer, why it ended, model calls, the history

Each step streams one assistant message with `messages.stream()`. When it ends with `stop_reason == "tool_use"` the
loop runs every tool the message asked for, concurrently (asyncio), each with a time limit, and sends all their
results back in ONE user turn (`is_error: true` for a tool that failed), then streams again, until the model ends its
turn or the step limit is reached. Assistant messages go back exactly as they arrived, thinking blocks and their
signatures included. A tool call is run only after its whole message has arrived: a stream that fails half way, or
stops at `max_tokens` inside a tool call, runs nothing.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import jiter

from .history import snapshot_or_none

if TYPE_CHECKING:
    import anthropic
    from anthropic.types import MessageParam
    from matplotlib.axes import Axes

__all__ = [
    "AgentEvent",
    "AgentFailed",
    "AgentRun",
    "Phase",
    "Tool",
    "ToolRecord",
    "partial_json",
    "plot_timeline",
    "print_event",
    "run_agent",
    "run_tools",
    "thinking_for",
]

PHASE_COLORS = {
    "waiting": "0.8",
    "thinking": "#8172b3",
    "text": "#4c72b0",
    "tool_input": "#dd8452",
    "tool_running": "#55a868",
    "tool_failed": "#c44e52",
}
PHASE_LABELS = {
    "waiting": "waiting for the model",
    "thinking": "thinking",
    "text": "text",
    "tool_input": "tool input streaming",
    "tool_running": "tool running",
    "tool_failed": "tool failed",
}


# -- tools -------------------------------------------------------------------------------------------------------------


@dataclass
class Tool:
    """A tool the model may call: its name, description, input schema, the Python function that runs it, a time limit.

    `params` is either a full JSON schema ({"type": "object", ...}) or a short {name: type} mapping, all required.
    The function receives the input as keyword arguments; it may be sync (run in a worker thread) or async.
    """

    name: str
    description: str
    params: dict[str, Any]
    func: Callable[..., Any]
    timeout: float = 10.0

    @property
    def input_schema(self) -> dict[str, Any]:
        """The JSON schema the API receives."""
        if self.params.get("type") == "object":
            return self.params
        return {
            "type": "object",
            "properties": {k: {"type": v} for k, v in self.params.items()},
            "required": list(self.params),
        }

    def to_param(self) -> dict[str, Any]:
        """The tool as the `tools=` list of a Messages request carries it."""
        return {"name": self.name, "description": self.description, "input_schema": self.input_schema}


@dataclass
class ToolRecord:
    """One tool call the loop ran: what was asked, what came back, and when (seconds since the run started)."""

    step: int
    id: str
    name: str
    input: dict[str, Any]
    content: str = ""
    is_error: bool = False
    start: float = 0.0
    end: float = 0.0

    def result_block(self) -> dict[str, Any]:
        """The `tool_result` block that answers this call."""
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": self.id, "content": self.content}
        if self.is_error:
            block["is_error"] = True
        return block


def _as_text(value: Any) -> str:
    """A tool's return value as the text of a tool_result (JSON for data, str for the rest)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


async def run_tool(tool: Tool | None, record: ToolRecord, clock: Callable[[], float]) -> ToolRecord:
    """Run one call with its time limit; a failure (exception, timeout, unknown tool) becomes an error result."""
    record.start = clock()
    try:
        if tool is None:
            raise LookupError(f"there is no tool called {record.name!r}")
        if inspect.iscoroutinefunction(tool.func):
            work: Awaitable[Any] = tool.func(**record.input)
        else:
            # A sync tool runs in a thread so that the others (and the event loop) keep going; on timeout the thread
            # cannot be killed and finishes in the background, which is why slow tools are better written async.
            work = asyncio.to_thread(tool.func, **record.input)
        result = await asyncio.wait_for(work, tool.timeout)
        if inspect.isawaitable(result):  # a plain function that returned a coroutine (a wrapper, a lambda)
            result = await asyncio.wait_for(result, tool.timeout)
        record.content = _as_text(result)
    except TimeoutError:
        record.content, record.is_error = f"timed out after {tool.timeout:g} s" if tool else "timed out", True
    except Exception as exc:  # the model should hear about any failure, in words it can act on
        record.content, record.is_error = f"{type(exc).__name__}: {exc}", True
    record.end = clock()
    return record


async def run_tools(
    calls: Sequence[Any], tools: Sequence[Tool], step: int = 1, clock: Callable[[], float] = time.perf_counter
) -> list[ToolRecord]:
    """Run a message's tool_use blocks concurrently; the records come back in the calls' order."""
    by_name = {t.name: t for t in tools}
    records = [ToolRecord(step, _get(c, "id"), _get(c, "name"), dict(_get(c, "input") or {})) for c in calls]
    return list(await asyncio.gather(*(run_tool(by_name.get(r.name), r, clock) for r in records)))


def _get(block: Any, key: str) -> Any:
    return block.get(key) if isinstance(block, dict) else getattr(block, key, None)


# -- partial JSON ------------------------------------------------------------------------------------------------------


def partial_json(buffer: str) -> Any:
    """What the tool input so far says: jiter's partial mode, keeping a half-written string ("trailing-strings").

    The SDK's own `input_json` snapshot uses `partial_mode=True`, which leaves an unfinished string out: fine for
    reading, blank for a live display while a long string value streams. Returns {} for an empty buffer.
    """
    if not buffer.strip():
        return {}
    return jiter.from_json(buffer.encode(), partial_mode="trailing-strings")


# -- thinking ----------------------------------------------------------------------------------------------------------


def thinking_for(
    client: anthropic.Anthropic | anthropic.AsyncAnthropic, model: str, budget: int = 1024, display: str | None = None
) -> Any:
    """The `thinking=` setting a model supports, from its capabilities: adaptive if it can, else a budget, else
    None (a coroutine with an async client)."""

    def choose(info: Any) -> dict[str, Any] | None:
        types = info.capabilities.thinking.types if info.capabilities else None
        if types is None or not info.capabilities.thinking.supported:
            return None
        extra = {"display": display} if display else {}
        if types.adaptive.supported:
            return {"type": "adaptive", **extra}
        if types.enabled.supported:
            return {"type": "enabled", "budget_tokens": budget, **extra}
        return None

    found = client.models.retrieve(model)
    if inspect.isawaitable(found):

        async def later() -> dict[str, Any] | None:
            return choose(await found)

        return later()
    return choose(found)


# -- the run -----------------------------------------------------------------------------------------------------------


@dataclass
class Phase:
    """A stretch of time in a run: the model waiting, thinking, writing text or a tool's input, or a tool running."""

    kind: str
    step: int
    start: float
    end: float
    label: str = ""


@dataclass
class AgentEvent:
    """What the loop tells a display, as it happens.

    kind: "step" (a model call starts), "thinking", "text" (a piece of each), "tool_input" (the input so far, parsed
    from the fragments), "tool_ready" (a tool_use block is complete), "tool_start"/"tool_done" (a tool runs),
    "message" (a step's message is complete) and "end" (why the run ended).
    """

    kind: str
    step: int
    text: str = ""
    index: int | None = None
    name: str = ""
    tool_id: str = ""
    input: Any = None
    record: ToolRecord | None = None
    stop_reason: str | None = None


@dataclass
class AgentRun:
    """What one run did: the history (with every assistant message as it arrived), why it stopped, and when."""

    messages: list[dict[str, Any]]
    steps: int = 0
    stopped_by: str = ""  # "end_turn", "step_limit", "max_tokens", or another stop_reason
    text: str = ""  # the last message's text
    tool_calls: list[ToolRecord] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    duration: float = 0.0
    last_stop_reason: str | None = None
    last_message: Any = None  # the last complete message, also when it was left out of the history

    @property
    def done(self) -> bool:
        """True when the model finished its answer (not cut by the step limit or max_tokens)."""
        return self.stopped_by in ("end_turn", "stop_sequence")


class AgentFailed(Exception):
    """A step's stream failed; `run` holds what was complete before it, `partial` the message so far (never run)."""

    def __init__(self, error: BaseException, run: AgentRun, partial: Any = None) -> None:
        self.error, self.run, self.partial = error, run, partial
        super().__init__(f"step {run.steps} failed: {type(error).__name__}: {error}")


def block_param(block: Any) -> dict[str, Any]:
    """A content block as it goes back to the API: unchanged (a thinking block keeps its text and signature)."""
    return block.model_dump(exclude_none=True) if hasattr(block, "model_dump") else dict(block)


async def run_agent(
    client: anthropic.AsyncAnthropic,
    model: str,
    prompt: str | list[dict[str, Any]],
    tools: Sequence[Tool],
    *,
    max_steps: int = 5,
    max_tokens: int = 2048,
    thinking: dict[str, Any] | None = None,
    system: str | None = None,
    on_event: Callable[[AgentEvent], Any] | None = None,
    **request: Any,
) -> AgentRun:
    """Stream, run the tools asked for, send their results, and repeat until the model ends its turn or `max_steps`
    model calls have been made. Raises AgentFailed when a stream breaks (nothing of the broken step is run)."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
    run = AgentRun(messages=messages)
    origin = time.perf_counter()

    def clock() -> float:
        return time.perf_counter() - origin

    def emit(event: AgentEvent) -> None:
        if on_event is not None:
            on_event(event)

    options: dict[str, Any] = {
        "model": model,
        "max_tokens": max_tokens,
        "tools": [t.to_param() for t in tools],
        **request,
    }
    if thinking:
        options["thinking"] = thinking
    if system:
        options["system"] = system
    try:
        while True:
            if run.steps >= max_steps:
                run.stopped_by = "step_limit"
                break
            run.steps += 1
            step = run.steps
            emit(AgentEvent("step", step))
            message = await _stream_step(client, options, run, step, clock, emit)
            run.last_message, run.last_stop_reason = message, message.stop_reason
            run.text = "".join(b.text for b in message.content if b.type == "text")
            emit(AgentEvent("message", step, stop_reason=message.stop_reason))
            if message.stop_reason == "max_tokens" and any(b.type == "tool_use" for b in message.content):
                # Cut inside a tool call: its input is incomplete, so it is not run, and the message stays out of
                # the history (a tool_use with no tool_result after it would make the next request a 400).
                run.stopped_by = "max_tokens"
                break
            run.messages.append({"role": "assistant", "content": [block_param(b) for b in message.content]})
            if message.stop_reason != "tool_use":
                run.stopped_by = message.stop_reason or "end_turn"
                break
            calls = [b for b in message.content if b.type == "tool_use"]
            for call in calls:
                emit(AgentEvent("tool_start", step, name=call.name, tool_id=call.id, input=call.input))
            records = await run_tools(calls, tools, step, clock)
            for record in records:
                run.phases.append(
                    Phase(
                        "tool_failed" if record.is_error else "tool_running",
                        step,
                        record.start,
                        record.end,
                        f"{record.name}",
                    )
                )
                emit(AgentEvent("tool_done", step, name=record.name, tool_id=record.id, record=record))
            run.tool_calls += records
            # Every result of the turn goes back in ONE user message, in the order the calls were made.
            run.messages.append({"role": "user", "content": [r.result_block() for r in records]})
    finally:
        run.duration = clock()
    emit(AgentEvent("end", run.steps, stop_reason=run.stopped_by))
    return run


async def _stream_step(
    client: anthropic.AsyncAnthropic,
    options: dict[str, Any],
    run: AgentRun,
    step: int,
    clock: Callable[[], float],
    emit: Callable[[AgentEvent], None],
) -> Any:
    """One model call, streamed: phases timed, pieces passed to `emit`; returns the complete message."""
    sent: float | None = clock()  # None once the first block has started
    open_phase: Phase | None = None
    buffers: dict[int, str] = {}
    # The history is plain dicts, for learners to read and index; each one is a request's message param.
    stream_manager = client.messages.stream(messages=cast("list[MessageParam]", run.messages), **options)
    stream = None
    try:
        async with stream_manager as stream:
            async for event in stream:
                if event.type == "content_block_start":
                    if sent is not None:  # the wait before the first block: the model reading the request
                        run.phases.append(Phase("waiting", step, sent, clock()))
                        sent = None
                    block = event.content_block
                    kind = {
                        "thinking": "thinking",
                        "redacted_thinking": "thinking",
                        "text": "text",
                        "tool_use": "tool_input",
                    }.get(block.type, block.type)
                    open_phase = Phase(kind, step, clock(), clock(), getattr(block, "name", "") or "")
                    if block.type == "tool_use":
                        buffers[event.index] = ""
                        emit(
                            AgentEvent(
                                "tool_input", step, index=event.index, name=block.name, tool_id=block.id, input={}
                            )
                        )
                elif event.type == "thinking":
                    emit(AgentEvent("thinking", step, text=event.thinking))
                elif event.type == "text":
                    emit(AgentEvent("text", step, text=event.text))
                elif event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                    buffers[event.index] = buffers.get(event.index, "") + event.delta.partial_json
                    try:
                        shown = partial_json(buffers[event.index])
                    except ValueError:
                        shown = None  # not parseable yet: keep what the display has
                    if shown is not None:
                        emit(AgentEvent("tool_input", step, index=event.index, input=shown))
                elif event.type == "content_block_stop":
                    if open_phase is not None:
                        open_phase.end = clock()
                        run.phases.append(open_phase)
                        open_phase = None
                    block = event.content_block
                    if block.type == "tool_use":
                        emit(
                            AgentEvent(
                                "tool_ready",
                                step,
                                index=event.index,
                                name=block.name,
                                tool_id=block.id,
                                input=block.input,
                            )
                        )
            return await stream.get_final_message()
    except Exception as exc:
        if open_phase is not None:
            open_phase.end = clock()
            run.phases.append(open_phase)
        partial = snapshot_or_none(stream) if stream is not None else None
        raise AgentFailed(exc, run, partial) from exc


# -- showing a run -----------------------------------------------------------------------------------------------------

DIM, RESET = "\x1b[90m", "\x1b[0m"


class _Printer:
    """Prints a run as it happens: thinking dimmed, then the text, tool inputs once complete, results, the end."""

    def __init__(self) -> None:
        self.mode = ""

    def __call__(self, event: AgentEvent) -> None:
        kind = event.kind
        if kind == "step":
            self._switch("", f"── step {event.step} ──\n")
        elif kind == "thinking":
            self._switch("thinking", f"{DIM}[thinking] ")
            print(event.text, end="", flush=True)
        elif kind == "text":
            self._switch("text", "")
            print(event.text, end="", flush=True)
        elif kind == "tool_ready":
            self._switch("", f"→ {event.name}({json.dumps(event.input, ensure_ascii=False)})\n")
        elif kind == "tool_done" and event.record is not None:
            r = event.record
            mark = "✗" if r.is_error else "←"
            self._switch("", f"{mark} {r.name}: {r.content}\n")
        elif kind == "end":
            self._switch("", f"── ended: {event.stop_reason} after {event.step} step(s) ──\n")

    def _switch(self, mode: str, prefix: str) -> None:
        if self.mode != mode:
            if self.mode == "thinking":
                print(RESET)
            elif self.mode == "text":
                print()
            self.mode = mode
            print(prefix, end="", flush=True)
        elif not mode:
            print(prefix, end="", flush=True)


def print_event(event: AgentEvent) -> None:
    """A ready-made `on_event` for cells: prints the run as it happens (one printer per run, reset on "step" 1)."""
    global _printer
    if event.kind == "step" and event.step == 1:
        _printer = _Printer()
    _printer(event)


_printer = _Printer()


def plot_timeline(run: AgentRun, *, ax: Axes | None = None, title: str = "One agent run, phase by phase") -> Axes:
    """A Gantt chart of a run: one row per model step and one per tool call, coloured by phase, in real seconds."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    rows: list[tuple[str, list[Phase]]] = []
    for step in range(1, run.steps + 1):
        model = [p for p in run.phases if p.step == step and p.kind in ("waiting", "thinking", "text", "tool_input")]
        rows.append((f"step {step}: model", model))
        for p in run.phases:
            if p.step == step and p.kind in ("tool_running", "tool_failed"):
                rows.append((f"step {step}: {p.label}", [p]))
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.5 * len(rows) + 1.8), layout="constrained")
    visible = max(run.duration, 1.0) / 150  # the narrowest bar drawn, so that an instant tool still shows
    for y, (_, phases) in enumerate(rows):
        for p in phases:
            ax.barh(y, max(p.end - p.start, visible), left=p.start, height=0.6, color=PHASE_COLORS[p.kind])
            if p.kind in ("tool_running", "tool_failed"):
                took = p.end - p.start
                ax.annotate(
                    f"{took:.2f} s" if took >= 0.01 else "< 0.01 s",
                    (max(p.end, p.start + visible), y),
                    xytext=(4, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=8,
                    color="0.3",
                )
    ax.set_yticks(range(len(rows)), [label for label, _ in rows])
    ax.invert_yaxis()
    ax.set(xlabel="seconds since the run started")
    ax.set_title(title, pad=26)
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(True, axis="x", color="0.92")
    ax.set_axisbelow(True)
    used = [k for k in PHASE_COLORS if any(p.kind == k for p in run.phases)]
    ax.legend(
        handles=[Patch(color=PHASE_COLORS[k], label=PHASE_LABELS[k]) for k in used],
        loc="lower left",
        bbox_to_anchor=(0, 1.0),
        ncol=len(used),
        fontsize=8,
        frameon=False,
        borderaxespad=0.2,
    )
    return ax
