"""The lessons' displays: plots rendered with Agg and inspected, event tables of real streams from the simulator, and
live Markdown and stdout batching in a real Jupyter kernel."""

from __future__ import annotations

import io
import os
import time

import anthropic
import httpx
import matplotlib
import pytest

matplotlib.use("Agg", force=True)  # before pyplot: render to buffers, never to a screen

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from course_utils.display import (  # noqa: E402
    EVENT_TYPES,
    event_table,
    kernel_stdout_sends,
    plot_arrivals,
    plot_events,
    plot_lane_groups,
    plot_lanes,
    summarize_event,
    table,
)
from course_utils.simulator import Simulator  # noqa: E402
from course_utils.sse import parse_sse  # noqa: E402
from course_utils.timing import Timeline  # noqa: E402

MODEL = "claude-haiku-4-5"
WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather in a given location",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def streamed(client: anthropic.Anthropic, label: str, origin: float | None = None, **request) -> Timeline:
    """A timeline of a real stream from the simulator."""
    timeline = Timeline(label) if origin is None else Timeline(label, origin=origin)
    with client.messages.stream(model=MODEL, **request) as stream:
        for text in stream.text_stream:
            timeline.record(text)
    return timeline.finish()


def blocked(client: anthropic.Anthropic, label: str, **request) -> Timeline:
    timeline = Timeline(label)
    message = client.messages.create(model=MODEL, **request)
    timeline.record(message.content[0].text)
    return timeline.finish()


def raw_events(sim: Simulator, **request) -> list[dict]:
    """The decoded events of one real streamed response, read off the wire with httpx."""
    body = {"model": MODEL, "stream": True, **request}
    headers = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}  # the API rejects a request without it
    response = httpx.post(f"{sim.base_url}/v1/messages", json=body, headers=headers)
    return [e.json() for e in parse_sse([response.content])]


# -- plots -----------------------------------------------------------------------------------------------------------


def test_plot_arrivals_draws_each_timeline_as_a_step_curve(client: anthropic.Anthropic) -> None:
    request = {"max_tokens": 30, "messages": [{"role": "user", "content": "Tell me about coffee."}]}
    blocking, streaming = blocked(client, "blocking", **request), streamed(client, "streaming", **request)

    ax = plot_arrivals([blocking, streaming], title="Same reply, two ways")
    assert png(ax.figure).startswith(b"\x89PNG")

    curves = [line for line in ax.get_lines() if line.get_drawstyle() == "steps-post"]
    assert [line.get_label() for line in curves] == ["blocking", "streaming"]
    for line, timeline in zip(curves, [blocking, streaming], strict=True):
        times, counts = timeline.curve()
        assert list(line.get_xdata()) == [t - timeline.sent for t in times] and list(line.get_ydata()) == counts
    assert curves[1].get_ydata()[-1] == len(streaming.text) == len(blocking.text)
    labels = [text.get_text() for text in ax.texts]
    assert f"everything at once: {blocking.ttft:.2f} s" in labels  # one piece: a single label
    assert f"first words: {streaming.ttft:.2f} s" in labels
    assert f"done: {streaming.total:.2f} s" in labels
    assert len(labels) == 3
    assert ax.get_title(loc="left") == "Same reply, two ways"
    assert "seconds" in ax.get_xlabel() and "characters" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["blocking", "streaming"]


def test_plot_arrivals_starts_each_timeline_at_its_own_request() -> None:
    origin = time.perf_counter()
    time.sleep(0.05)
    later = Timeline("later", origin=origin)
    later.record("abc")
    later.record("def")
    later.finish()
    ax = plot_arrivals([later])
    assert ax.get_lines()[0].get_xdata()[0] == 0  # not later.sent, on the shared clock
    assert f"first words: {later.ttft:.2f} s" in [text.get_text() for text in ax.texts]


def test_plot_arrivals_copes_with_an_empty_reply() -> None:
    with Timeline("nothing") as empty:
        pass
    ax = plot_arrivals([empty])
    assert png(ax.figure).startswith(b"\x89PNG")
    assert [text.get_text() for text in ax.texts] == [f"done: {empty.total:.2f} s"]  # no first words to label


def test_plot_lanes_draws_a_tick_per_piece_on_a_shared_clock(client: anthropic.Anthropic) -> None:
    origin = time.perf_counter()
    request = {"max_tokens": 12, "messages": [{"role": "user", "content": "Tell me about music."}]}
    first = streamed(client, "first", origin=origin, **request)
    second = streamed(client, "second", origin=origin, **request)

    ax = plot_lanes([first, second])
    assert png(ax.figure).startswith(b"\x89PNG")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["second", "first"]  # first on top
    ticks = [c for c in ax.collections if isinstance(c, LineCollection) and c.get_linewidth()[0] == 1.1]
    for collection, timeline in zip(ticks, [first, second], strict=True):
        xs = [segment[0][0] for segment in collection.get_segments()]
        assert xs == [t for t, text in timeline.arrivals if text]
    assert ticks[1].get_segments()[0][0][0] > first.ended  # the second request started after the first ended
    assert ax.get_legend() is not None


def test_plot_lane_groups_stacks_groups_on_one_time_axis() -> None:
    origin = time.perf_counter()
    timelines = []
    for label in ("a", "b", "c"):
        timeline = Timeline(label, origin=origin)
        timeline.record("x")
        timelines.append(timeline.finish())
    figure = plot_lane_groups({"one after another": timelines, "together": timelines[:2]}, title="Streams")
    assert png(figure).startswith(b"\x89PNG")
    top, bottom = figure.axes
    assert top.get_shared_x_axes().joined(top, bottom)
    assert (top.get_title(loc="left"), bottom.get_title(loc="left")) == ("one after another", "together")
    assert top.get_legend() is not None and bottom.get_legend() is None
    assert top.get_xlabel() == "" and "seconds" in bottom.get_xlabel()
    assert len(top.get_yticklabels()) == 3 and len(bottom.get_yticklabels()) == 2
    assert figure._suptitle.get_text() == "Streams"


def test_plot_events_places_each_event_by_number_type_and_block(fresh_sim: Simulator) -> None:
    events = raw_events(
        fresh_sim,
        max_tokens=200,
        tools=[WEATHER],
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
    )
    ax = plot_events(events)
    assert png(ax.figure).startswith(b"\x89PNG")
    path = ax.get_lines()[0]
    assert list(path.get_xdata()) == list(range(1, len(events) + 1))
    assert [EVENT_TYPES[int(y)] for y in path.get_ydata()] == [e["type"] for e in events]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["block 0 (text)", "block 1 (tool_use)", "the message as a whole"]
    dots = {label: len(c.get_offsets()) for label, c in zip(labels, ax.collections, strict=True)}
    assert dots["block 1 (tool_use)"] == sum(1 for e in events if e.get("index") == 1)
    assert dots["the message as a whole"] == sum(1 for e in events if "index" not in e)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(EVENT_TYPES)
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # message_start at the top


# -- live Markdown and the kernel's stdout, in a real Jupyter kernel -------------------------------------------------

KERNEL_CELLS = {
    "batching": """
import json, time
from course_utils.display import kernel_stdout_sends
counts = {}
for flush in (False, True):
    with kernel_stdout_sends() as sent:
        for i in range(30):
            print(f"w{i} ", end="", flush=flush)
            time.sleep(0.02)
    counts[flush] = (len(sent), "".join(text for _, text in sent))
print()
messages = {str(k): v[0] for k, v in counts.items()}
print(json.dumps({"messages": messages, "same_text": counts[False][1] == counts[True][1]}))
""",
    "live": """
import json, anthropic
from IPython.utils.capture import capture_output
from course_utils import setup
from course_utils.display import LiveMarkdown
course = setup(speed=0, quiet=True)
with capture_output() as captured:
    live = LiveMarkdown("**Claude:**", every=0)
    with anthropic.Anthropic().messages.stream(model=course.model, max_tokens=20,
            messages=[{"role": "user", "content": "Tell me about volcanoes."}]) as stream:
        for text in stream.text_stream:
            live.append(text)
        final = stream.get_final_text()
    returned = live.finish()
outputs = [{"update": o.update, "id": o.transient.get("display_id"), "md": o.data.get("text/markdown")}
           for o in captured.outputs]
print(json.dumps({"outputs": outputs, "final": final, "returned": returned, "updates": live.updates}))
""",
    "throttled": """
with capture_output() as captured, LiveMarkdown(every=60) as live:
    for piece in ["a", "b", "c"]:
        live.append(piece)
print(json.dumps({"outputs": len(captured.outputs), "updates": live.updates,
                  "last": captured.outputs[-1].data["text/markdown"]}))
""",
}


@pytest.fixture(scope="module")
def kernel() -> dict[str, dict]:
    """Run KERNEL_CELLS in one fresh Jupyter kernel; each cell's last printed line, decoded as JSON."""
    import json

    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code) for code in KERNEL_CELLS.values()])
    NotebookClient(notebook, timeout=60, kernel_name="python3", resources={"metadata": {"path": os.getcwd()}}).execute()
    printed = ["".join(o.get("text", "") for o in cell.outputs) for cell in notebook.cells]
    return {name: json.loads(text.splitlines()[-1]) for name, text in zip(KERNEL_CELLS, printed, strict=True)}


@pytest.mark.slow
def test_live_markdown_updates_one_output_in_place(kernel: dict[str, dict]) -> None:
    result = kernel["live"]
    first, *updates = result["outputs"]
    assert not first["update"] and first["md"] == "**Claude:**\n\n ▌"
    assert updates and all(o["update"] and o["id"] == first["id"] for o in updates)
    assert len(updates) == result["updates"]
    assert updates[-2]["md"].endswith(" ▌")  # the cursor shows while streaming...
    assert updates[-1]["md"] == f"**Claude:**\n\n{result['final']}"  # ...and is gone at the end
    assert result["returned"] == result["final"]


@pytest.mark.slow
def test_live_markdown_redraws_at_most_every_interval(kernel: dict[str, dict]) -> None:
    # The first draw and the final one only: the appends came faster than one a minute.
    assert kernel["throttled"] == {"outputs": 2, "updates": 1, "last": "abc"}


@pytest.mark.slow
def test_a_kernel_batches_stdout_unless_flushed(kernel: dict[str, dict]) -> None:
    result = kernel["batching"]
    assert result["messages"]["False"] < 30 and result["messages"]["True"] == 30
    assert result["same_text"]


def test_kernel_stdout_sends_needs_a_kernel() -> None:
    with pytest.raises(RuntimeError, match="Jupyter kernel"):
        with kernel_stdout_sends():
            pass


# -- tables ----------------------------------------------------------------------------------------------------------


def test_event_table_of_a_real_stream(fresh_sim: Simulator) -> None:
    events = raw_events(fresh_sim, max_tokens=25, messages=[{"role": "user", "content": "Tell me about tides."}])
    deltas = [e for e in events if e["type"] == "content_block_delta"]
    text = "".join(d["delta"]["text"] for d in deltas)

    collapsed = event_table(events)
    assert collapsed.columns == ("#", "event", "index", "carries")
    kinds = [row[1] for row in collapsed.rows]
    assert kinds == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    run = collapsed.rows[3]
    assert run[0] == f"4–{3 + len(deltas)}" and run[3].startswith(f"{len(deltas)} × text_delta, joined: ")
    assert run[3].removeprefix(f"{len(deltas)} × text_delta, joined: ").rstrip("…'")[1:] in repr(text)
    assert "stop_reason max_tokens" in collapsed.rows[5][3] and "output_tokens 25" in collapsed.rows[5][3]
    assert collapsed.rows[0][3].startswith("id msg_") and "input_tokens" in collapsed.rows[0][3]

    full = event_table(events, collapse=False)
    assert len(full.rows) == len(events) and [r[0] for r in full.rows] == [str(i) for i in range(1, len(events) + 1)]


def test_event_table_of_a_tool_call_and_an_error(fresh_sim: Simulator) -> None:
    events = raw_events(
        fresh_sim,
        max_tokens=200,
        tools=[WEATHER],
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
    )
    rows = event_table(events).rows
    assert any("a tool_use block: get_weather (toolu_" in row[3] for row in rows)
    json_row = next(row for row in rows if "input_json_delta" in row[3])
    assert json_row[2] == "1" and json_row[3].endswith("""joined: '{"location": "Paris"}'""")

    fresh_sim.inject("error_midstream", after=2)
    events = raw_events(fresh_sim, max_tokens=50, messages=[{"role": "user", "content": "Tell me about tides."}])
    assert event_table(events).rows[-1][1:] == ("error", "", "overloaded_error: Overloaded")


def test_summarize_event_reads_the_sdks_own_events(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model=MODEL,
        max_tokens=200,
        tools=[WEATHER],
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
    ) as stream:
        events = list(stream)
    summaries = {e.type: summarize_event(e) for e in events}
    assert summaries["text"].startswith("text '") and "snapshot now" in summaries["text"]
    assert summaries["input_json"].endswith('snapshot {"location": "Paris"}')
    assert summaries["message_stop"] == "the end (no other fields)"
    with pytest.raises(TypeError):
        summarize_event(42)


def test_a_table_renders_html_escaped_and_aligned_text() -> None:
    shown = table([{"name": "<b>", "n": 1}, {"name": "x", "n": None}], code_columns=["name"])
    assert shown._repr_html_().count("<tr>") == 3
    assert "<code>&lt;b&gt;</code>" in shown._repr_html_()
    assert repr(shown).splitlines() == ["name  n", "----  -", "<b>   1", "x"]
    assert table([]).rows == ()


def test_event_table_of_a_thinking_stream_and_a_citation(fresh_sim: Simulator) -> None:
    events = raw_events(
        fresh_sim,
        max_tokens=2000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Why is the sky blue?"}],
    )
    rows = event_table(events).rows
    thinking = next(row for row in rows if "× thinking_delta, joined: " in row[3])
    assert thinking[2] == "0"
    assert any(row[3].startswith("signature_delta (") and "sent whole, once" in row[3] for row in rows)
    citation = {
        "type": "content_block_delta",
        "index": 1,
        "delta": {
            "type": "citations_delta",
            "citation": {"type": "char_location", "cited_text": "The sky is blue.", "document_index": 0},
        },
    }
    assert summarize_event(citation) == "citations_delta char_location 'The sky is blue.'"
    future = {"type": "content_block_delta", "index": 0, "delta": {"type": "future_delta", "note": "new"}}
    assert "future_delta" in summarize_event(future)
