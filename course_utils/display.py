"""What the lessons show: timelines of streamed replies, live Markdown, and tables of stream events.

    plot_arrivals([blocking, streaming])        # characters on screen over time (lesson 01)
    plot_lane_groups({"sequential": a, "gather": b})  # one lane per stream, a tick per piece (lesson 03)
    live = LiveMarkdown(); live.append(text); live.finish()
    event_table(events); plot_events(events)     # what each SSE event carries, and their order (lesson 02)
    plot_route(course, base_url)                 # notebook -> SDK -> ANTHROPIC_BASE_URL -> simulator or API (00)
    plot_cut(body, cut)                          # event boundaries against a chunk boundary (lesson 02)

Matplotlib is imported only by the plotting functions, so the rest is cheap to import.
"""

from __future__ import annotations

import html
import itertools
import json
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .timing import Timeline

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.text import Annotation

__all__ = [
    "EVENT_TYPES",
    "LiveMarkdown",
    "Table",
    "event_table",
    "kernel_stdout_sends",
    "plot_arrivals",
    "plot_cut",
    "plot_events",
    "plot_lane_groups",
    "plot_lanes",
    "plot_route",
    "summarize_event",
    "table",
]

WAITING_COLOR = "0.72"  # the grey of "nothing on screen yet"


# -- plots -----------------------------------------------------------------------------------------------------------


def _axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    """The given axes, or new ones on a new figure with tidy defaults."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=size, layout="constrained")
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(True, axis="both", color="0.92", lw=0.8)
    ax.set_axisbelow(True)
    return ax


def _note(ax: Axes, text: str, xy: tuple[float, float], offset: tuple[float, float], color: str) -> Annotation:
    """A small label with an arrow pointing at `xy`, `offset` points away from it."""
    return ax.annotate(
        text,
        xy=xy,
        xytext=offset,
        textcoords="offset points",
        fontsize=9,
        color=color,
        ha="left" if offset[0] >= 0 else "right",
        va="center",
        arrowprops={"arrowstyle": "-", "color": color, "lw": 0.8, "shrinkB": 2},
        bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "none", "alpha": 0.6},
    )


def plot_arrivals(
    timelines: Sequence[Timeline], *, ax: Axes | None = None, title: str = "Characters on screen over time"
) -> Axes:
    """Step plot of characters received against time since each request, one line per timeline, annotated."""
    ax = _axes(ax, (8.5, 4.2))
    top = max((t.chars for t in timelines), default=0) or 1
    right = max((t.curve()[0][-1] - t.sent for t in timelines), default=1.0) or 1.0
    for i, timeline in enumerate(timelines):
        color = f"C{i}"
        times, counts = timeline.curve()
        times = [t - timeline.sent for t in times]  # each from its own request, so separate runs line up
        ax.step(times, counts, where="post", color=color, lw=2.2, label=timeline.label or f"reply {i + 1}")
        first = None if timeline.first_at is None else timeline.first_at - timeline.sent
        end = None if timeline.ended is None else timeline.ended - timeline.sent
        if first is not None:
            ax.axvline(first, color=color, ls=":", lw=1.2)
            height = top * (0.55 - 0.14 * i)
            if len([text for _, text in timeline.arrivals if text]) == 1:  # everything in one piece: one label
                # To the right if there is room (nothing else happens after it), else to the left.
                side = 10 if right - first > 0.3 * right else -10
                _note(ax, f"everything at once: {timeline.ttft:.2f} s", (first, height), (side, 0), color)
                continue
            # To the left, where this line is still flat at zero, if there is room for the label.
            side = -10 if first > 0.2 * right else 10
            _note(ax, f"first words: {timeline.ttft:.2f} s", (first, height), (side, 0), color)
        if end is not None:
            ax.plot([end], [counts[-1]], marker="o", ms=5, color=color)
            _note(ax, f"done: {timeline.total:.2f} s", (end, counts[-1]), (-14, 10 + 14 * i), color)
    ax.set_xlim(left=0)
    ax.set_ylim(-top * 0.025, top * 1.12)  # a little room below 0, so a line waiting at 0 stays visible
    ax.set_xlabel("seconds since the request was sent")
    ax.set_ylabel("characters received")
    ax.set_title(title, loc="left", fontsize=12)
    ax.legend(loc="upper left", frameon=False)
    return ax


def plot_lanes(
    timelines: Sequence[Timeline],
    *,
    ax: Axes | None = None,
    title: str = "One lane per stream: a tick for each piece of text",
    legend: bool = True,
) -> Axes:
    """One horizontal lane per timeline on a shared clock: waiting in grey, then a tick per arrival."""
    from matplotlib.lines import Line2D

    ax = _axes(ax, (9, 0.9 + 0.6 * max(1, len(timelines))))
    ax.grid(False, axis="y")
    count = len(timelines)
    for lane, timeline in enumerate(timelines):
        y = count - 1 - lane  # the first timeline on top
        color = f"C{lane}"
        times = [t for t, text in timeline.arrivals if text]
        first = times[0] if times else timeline.ended
        end = timeline.ended if timeline.ended is not None else (times[-1] if times else timeline.sent)
        if first is not None:
            ax.hlines(y, timeline.sent, first, color=WAITING_COLOR, lw=3)
            ax.hlines(y, first, end, color=color, lw=12, alpha=0.16)
        ax.vlines(times, y - 0.3, y + 0.3, color=color, lw=1.1)
        ax.plot([timeline.sent], [y], marker=">", ms=6, color="0.35", ls="none", clip_on=False)
        ax.plot([end], [y], marker="|", ms=18, mew=2, color=color, ls="none")
    ax.set_yticks(range(count), [t.label or f"stream {i + 1}" for i, t in enumerate(timelines)][::-1])
    ax.set_ylim(-0.7, count - 0.3)
    ax.set_xlim(left=0)
    ax.set_xlabel("seconds since the first request was sent")
    ax.set_title(title, loc="left", fontsize=12)
    if legend:
        handles = [
            Line2D([], [], color="0.35", marker=">", ls="none", label="request sent"),
            Line2D([], [], color=WAITING_COLOR, lw=3, label="waiting for the\nfirst token"),
            Line2D([], [], color="0.2", marker="|", ms=9, ls="none", label="a piece of text"),
            Line2D([], [], color="0.2", marker="|", ms=14, mew=2, ls="none", label="stream ended"),
        ]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)
    return ax


def plot_lane_groups(groups: Mapping[str, Sequence[Timeline]], *, title: str = "") -> Figure:
    """`plot_lanes` for several groups of streams, stacked on one time axis (e.g. sequential vs concurrent)."""
    import matplotlib.pyplot as plt

    sizes = [max(1, len(timelines)) for timelines in groups.values()]
    fig, axes = plt.subplots(
        len(sizes),
        1,
        sharex=True,
        squeeze=False,
        layout="constrained",
        figsize=(9, 0.6 + sum(0.55 * n + 0.6 for n in sizes)),
        gridspec_kw={"height_ratios": [n + 0.8 for n in sizes]},
    )
    for i, (ax, (name, timelines)) in enumerate(zip(axes[:, 0], groups.items(), strict=True)):
        plot_lanes(timelines, ax=ax, title=name, legend=i == 0)
        if i < len(sizes) - 1:
            ax.set_xlabel("")
    if title:
        fig.suptitle(title, x=0.02, ha="left", fontsize=13)
    return fig


def plot_route(mode: str, base_url: str, *, title: str = "Where a request goes") -> Axes:
    """A sketch of the path of every request: notebook -> SDK -> ANTHROPIC_BASE_URL -> the simulator or the real API."""
    from matplotlib.patches import FancyBboxPatch

    ax = _axes(None, (9.5, 3.0))
    ax.grid(False)
    ax.set_axis_off()
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 3.2)
    simulated = mode == "offline" or "anthropic.com" not in base_url  # live mode may point at a simulator too
    boxes = [
        (0.1, 1.3, "your notebook", "client.messages.stream(...)"),
        (2.6, 1.3, "anthropic SDK", "reads ANTHROPIC_API_KEY\nand ANTHROPIC_BASE_URL"),
        (5.1, 1.3, "ANTHROPIC_BASE_URL", base_url),
    ]
    ends = [
        (7.6, 2.15, "a simulator", "the course's: no key, no cost", simulated),
        (7.6, 0.25, "real Claude API", "your key, billed per token", not simulated),
    ]
    for x, y, head, body in boxes:
        ax.add_patch(FancyBboxPatch((x, y), 2.1, 1.0, boxstyle="round,pad=0.05", fc="#eef3fb", ec="C0", lw=1.5))
        ax.text(x + 1.05, y + 0.7, head, ha="center", va="center", fontsize=10, weight="bold")
        ax.text(x + 1.05, y + 0.32, body, ha="center", va="center", fontsize=8, family="monospace")
    for x in (2.2, 4.7):
        ax.annotate("", xy=(x + 0.4, 1.8), xytext=(x, 1.8), arrowprops={"arrowstyle": "-|>", "color": "0.3", "lw": 1.5})
    for x, y, head, body, chosen in ends:
        color = "C2" if chosen else "0.7"
        ax.add_patch(
            FancyBboxPatch(
                (x, y),
                2.2,
                0.8,
                boxstyle="round,pad=0.05",
                fc="#eefaef" if chosen else "0.97",
                ec=color,
                lw=2.2 if chosen else 1,
                ls="-" if chosen else "--",
            )
        )
        ax.text(
            x + 1.1,
            y + 0.55,
            head + (" (now)" if chosen else ""),
            ha="center",
            va="center",
            fontsize=10,
            weight="bold" if chosen else "normal",
            color="0.1" if chosen else "0.5",
        )
        ax.text(x + 1.1, y + 0.22, body, ha="center", va="center", fontsize=8, color="0.2" if chosen else "0.55")
        ax.annotate(
            "",
            xy=(x, y + 0.4),
            xytext=(7.25, 1.8),
            arrowprops={"arrowstyle": "-|>", "color": color, "lw": 1.8 if chosen else 1, "ls": "-" if chosen else "--"},
        )
    ax.set_title(f"{title}: {mode} mode", loc="left", fontsize=12)
    return ax


def plot_cut(
    body: bytes, cuts: Sequence[int], *, title: str = "Events against chunks: where the network cut falls"
) -> Axes:
    """Event boundaries (each blank line) above, network chunks below, on one byte axis; each cut marked in red."""
    ax = _axes(None, (10, 3.2))
    ax.grid(False)
    ends = [i + 2 for i in range(len(body)) if body.startswith(b"\n\n", i)]  # an event ends after its blank line
    starts = [0, *ends][: len(ends)]  # each event starts where the one before it ended
    names = [
        body[a:b].split(b"\n", 1)[0].removeprefix(b"event: ").decode(errors="replace")
        for a, b in zip(starts, ends, strict=True)
    ]
    for number, (a, b) in enumerate(zip(starts, ends, strict=True), start=1):
        ax.barh(1, b - a, left=a, height=0.55, color=f"C{number % 2}", alpha=0.55, ec="white")
        ax.text((a + b) / 2, 1, str(number), ha="center", va="center", fontsize=8)
    bounds = [0, *sorted(cuts), len(body)]
    for number, (a, b) in enumerate(itertools.pairwise(bounds), start=1):
        ax.barh(0, b - a, left=a, height=0.55, color="0.55" if number % 2 else "0.75", ec="white")
        ax.text((a + b) / 2, 0, f"chunk {number}: {b - a} bytes", ha="center", va="center", fontsize=8)
    for cut in cuts:
        ax.axvline(cut, color="C3", lw=2)
        hit = next(n for n, (a, b) in enumerate(zip(starts, ends, strict=True), start=1) if a <= cut < b)
        where = "between events" if cut in starts else f"inside event {hit} ({names[hit - 1]})"
        ax.annotate(
            f"cut at byte {cut}: {where}",
            xy=(cut, 1.3),
            xytext=(8, 12),
            textcoords="offset points",
            color="C3",
            fontsize=9,
            arrowprops={"arrowstyle": "-", "color": "C3"},
        )
    ax.set_yticks([0, 1], ["network chunks", "events (end at\na blank line)"])
    ax.set_ylim(-0.5, 1.9)
    ax.set_xlim(0, len(body))
    ax.set_xlabel("byte offset in the response body")
    ax.set_title(title, loc="left", fontsize=12)
    return ax


EVENT_TYPES = (
    "message_start",
    "content_block_start",
    "ping",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "error",
)


def plot_events(
    events: Sequence[Any], *, ax: Axes | None = None, title: str = "The events of one stream, in order"
) -> Axes:
    """Each event of a stream as a dot: its number across, its type down, coloured by the block it belongs to."""
    ax = _axes(ax, (9, 3.6))
    ax.grid(False, axis="x")
    data = [_as_dict(event) for event in events]
    rows = [EVENT_TYPES.index(d.get("type")) if d.get("type") in EVENT_TYPES else len(EVENT_TYPES) for d in data]
    numbers = list(range(1, len(data) + 1))
    ax.plot(numbers, rows, color="0.8", lw=1, zorder=1)  # the path the stream takes through the grammar
    blocks = [d.get("index") for d in data]
    for block in sorted({b for b in blocks if b is not None}):
        kinds = {
            d["content_block"].get("type")
            for d in data
            if d.get("type") == "content_block_start" and d.get("index") == block
        }
        points = [(n, r) for n, r, b in zip(numbers, rows, blocks, strict=True) if b == block]
        xs, ys = zip(*points, strict=True)
        ax.scatter(
            xs, ys, s=28, color=f"C{block}", zorder=2, label=f"block {block} ({', '.join(sorted(kinds)) or '?'})"
        )
    points = [(n, r) for n, r, b in zip(numbers, rows, blocks, strict=True) if b is None]
    if points:
        xs, ys = zip(*points, strict=True)
        ax.scatter(xs, ys, s=28, color="0.3", marker="s", zorder=2, label="the message as a whole")
    names = list(EVENT_TYPES) + (["(other)"] if len(EVENT_TYPES) in rows else [])
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.5, -0.5)  # the grammar reads top to bottom
    ax.set_xlabel("event number in the stream")
    ax.set_title(title, loc="left", fontsize=12)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)
    return ax


# -- live Markdown ---------------------------------------------------------------------------------------------------


class LiveMarkdown:
    """A Markdown output that grows in place while a reply streams in (`display(..., display_id=True)` + update)."""

    def __init__(self, heading: str = "", *, cursor: str = " ▌", every: float = 0.05) -> None:
        """Show an empty output now; `every` is the least time between redraws, so fast streams stay cheap."""
        from IPython.display import display

        self.heading, self.cursor, self.every = heading, cursor, every
        self.text = ""
        self.updates = 0
        self._last = time.perf_counter()
        self._handle = display(self._markdown(streaming=True), display_id=True)

    def _markdown(self, *, streaming: bool) -> Any:
        from IPython.display import Markdown

        body = self.text + (self.cursor if streaming else "")
        return Markdown(f"{self.heading}\n\n{body}" if self.heading else body)

    def append(self, piece: str) -> None:
        """Add a piece of text; redraw unless the last redraw was under `every` seconds ago."""
        self.text += piece
        now = time.perf_counter()
        if now - self._last >= self.every:
            self._redraw(streaming=True)
            self._last = now

    def finish(self) -> str:
        """Draw the final text without the cursor and return it."""
        self._redraw(streaming=False)
        return self.text

    def _redraw(self, *, streaming: bool) -> None:
        if self._handle is not None:
            self._handle.update(self._markdown(streaming=streaming))
            self.updates += 1

    def __enter__(self) -> LiveMarkdown:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.finish()


# -- what the kernel sends -------------------------------------------------------------------------------------------


@contextmanager
def kernel_stdout_sends() -> Iterator[list[tuple[float, str]]]:
    """Record each stdout message the Jupyter kernel sends to the browser inside the block: (seconds, text)."""
    import sys

    out: Any = sys.stdout  # in a kernel, ipykernel's OutStream (register_hook, pub_thread), which typeshed cannot know
    if not hasattr(out, "register_hook") or getattr(out, "pub_thread", None) is None:
        raise RuntimeError("this records ipykernel's stdout messages: run it inside a Jupyter kernel")
    sent: list[tuple[float, str]] = []
    start = time.perf_counter()

    def hook(msg: dict[str, Any]) -> dict[str, Any]:
        if msg.get("content", {}).get("name") == "stdout":
            sent.append((time.perf_counter() - start, msg["content"]["text"]))
        return msg  # returning the message lets it go on to the browser

    def in_io_thread(action: Any) -> None:
        # Hooks are per thread, and ipykernel sends output from its own IO thread: register the hook there.
        done = threading.Event()

        def run() -> None:
            action()
            done.set()

        out.pub_thread.schedule(run)
        done.wait(5)

    out.flush()  # earlier output goes out before we start counting
    in_io_thread(lambda: out.register_hook(hook))
    try:
        yield sent
    finally:
        out.flush()
        in_io_thread(lambda: out.unregister_hook(hook))


# -- tables ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """Rows of text shown as an HTML table in Jupyter and as aligned columns in plain text."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    code_columns: frozenset[str] = frozenset()

    def _repr_html_(self) -> str:
        def cell(column: str, value: str) -> str:
            text = html.escape(value)
            return f"<td style='text-align:left'>{f'<code>{text}</code>' if column in self.code_columns else text}</td>"

        head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(cell(c, v) for c, v in zip(self.columns, row, strict=True)) + "</tr>" for row in self.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        widths = [max([len(c), *(len(r[i]) for r in self.rows)]) for i, c in enumerate(self.columns)]
        lines = [self.columns, tuple("-" * w for w in widths), *self.rows]
        return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def table(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str] | None = None, code_columns: Iterable[str] = ()
) -> Table:
    """A `Table` from dicts; columns default to the first row's keys."""
    rows = list(rows)
    names = tuple(columns if columns is not None else (rows[0].keys() if rows else ()))
    cells = tuple(tuple("" if r.get(c) is None else str(r.get(c)) for c in names) for r in rows)
    return Table(names, cells, frozenset(code_columns))


def _as_dict(event: Any) -> dict[str, Any]:
    """A decoded event as a plain dict, from a dict, a `ServerSentEvent` or an SDK event object."""
    if isinstance(event, Mapping):
        return dict(event)
    if hasattr(event, "to_dict"):  # the SDK's pydantic models
        return event.to_dict(mode="json")
    if hasattr(event, "json") and hasattr(event, "data"):  # a ServerSentEvent
        return event.json()
    raise TypeError(f"not a stream event: {event!r}")


def _short(value: Any, width: int = 48) -> str:
    """A repr cut to `width` characters."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


_DELTA_PAYLOAD = {"text_delta": "text", "input_json_delta": "partial_json", "thinking_delta": "thinking"}


def summarize_event(event: Any) -> str:
    """What one stream event carries, in a few words."""
    data = _as_dict(event)
    kind = data.get("type")
    if kind == "message_start":
        message, usage = data["message"], data["message"].get("usage") or {}
        return (
            f"id {message.get('id')}, model {message.get('model')}, input_tokens {usage.get('input_tokens')}, "
            f"output_tokens {usage.get('output_tokens')}"
        )
    if kind == "content_block_start":
        block = data["content_block"]
        if block.get("type") in ("tool_use", "server_tool_use"):
            return f"a {block['type']} block: {block.get('name')} ({block.get('id')}), input {{}}"
        return f"a {block.get('type')} block"
    if kind == "content_block_delta":
        delta = data["delta"]
        if delta.get("type") == "signature_delta":
            return f"signature_delta ({len(delta.get('signature') or '')} characters, sent whole, once)"
        if delta.get("type") == "citations_delta":
            citation = delta.get("citation") or {}
            return f"citations_delta {citation.get('type')} {_short(citation.get('cited_text'), 40)}"
        field = _DELTA_PAYLOAD.get(delta.get("type"))
        return f"{delta.get('type')} {_short(delta.get(field))}" if field else _short(delta)
    if kind == "content_block_stop":
        return f"block {data.get('index')} is complete"
    if kind == "message_delta":
        delta, usage = data.get("delta") or {}, data.get("usage") or {}
        return (
            f"stop_reason {delta.get('stop_reason')}, stop_sequence {delta.get('stop_sequence')}, "
            f"output_tokens {usage.get('output_tokens')}"
        )
    if kind == "message_stop":
        return "the end (no other fields)"
    if kind == "ping":
        return "keep-alive (no other fields)"
    if kind == "error":
        error = data.get("error") or {}
        return f"{error.get('type')}: {error.get('message')}"
    if kind == "text":  # the SDK's own event, made from a text_delta
        return f"text {_short(data.get('text'))}, snapshot now {len(data.get('snapshot') or '')} chars"
    if kind == "input_json":  # the SDK's own event, made from an input_json_delta
        return f"partial_json {_short(data.get('partial_json'), 24)}, snapshot {_short(data.get('snapshot'), 40)}"
    return _short({k: v for k, v in data.items() if k != "type"})


def event_table(events: Iterable[Any], *, collapse: bool = True) -> Table:
    """A table of stream events: their number, type, block index and what each carries.

    With `collapse`, a run of deltas of one kind in one block becomes one row that shows their joined payload.
    """
    rows: list[dict[str, Any]] = []
    run: list[dict[str, Any]] = []
    first_number = 0

    def close_run() -> None:
        if not run:
            return
        delta_type = run[0]["delta"].get("type")
        field = _DELTA_PAYLOAD.get(delta_type)
        joined = "".join(str(e["delta"].get(field, "")) for e in run) if field else ""
        span = str(first_number) if len(run) == 1 else f"{first_number}–{first_number + len(run) - 1}"
        carries = summarize_event(run[0]) if len(run) == 1 else f"{len(run)} × {delta_type}, joined: {_short(joined)}"
        rows.append({"#": span, "event": "content_block_delta", "index": run[0].get("index"), "carries": carries})
        run.clear()

    for number, event in enumerate(events, start=1):
        data = _as_dict(event)
        if collapse and data.get("type") == "content_block_delta":
            same = (
                run
                and run[0].get("index") == data.get("index")
                and run[0]["delta"].get("type") == data["delta"].get("type")
            )
            if not same:
                close_run()
                first_number = number
            run.append(data)
            continue
        close_run()
        rows.append(
            {"#": number, "event": data.get("type"), "index": data.get("index"), "carries": summarize_event(data)}
        )
    close_run()
    return table(rows, ["#", "event", "index", "carries"], code_columns=["event"])
