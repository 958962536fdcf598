"""The agent loop, live in JupyterLab: thinking dimmed, the answer's text, and one card per tool call (lesson 07).

    view = AgentView()                     # a display only: feed it a run's events
    display(view); await run_agent(client, model, prompt, tools, on_event=view.handle)

    ui = AgentWidget(course.async_client(), course.model, tools, thinking=...)   # a prompt box, Run and Stop
    ui

A card shows the tool's input as it streams (parsed from the fragments so far), then "running", then the result or
the error. As in lesson 04's chat widget, each run is an asyncio task on a loop in a background thread, so the kernel
stays free and Stop cancels the task; `async with` inside the loop closes the stream. Drive it from code with
`ui.prompt.value = "..."`, `ui.run_button.click()`, `ui.wait()`.
"""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets

from .agent import AgentEvent, AgentFailed, AgentRun, Tool, run_agent
from .chat_widget import BackgroundWidget, _LoopThread

__all__ = ["AgentView", "AgentWidget"]

_THINKING = (
    "<details open style='margin:4px 0'><summary style='color:#888;font-size:90%'>thinking{note}</summary>"
    "<div style='color:#888;font-style:italic;font-size:90%;white-space:pre-wrap;border-left:3px solid #ddd;"
    "padding-left:8px'>{text}</div></details>"
)
_TEXT = "<div style='white-space:pre-wrap;line-height:1.4;margin:4px 0'>{text}</div>"
_CARD = (
    "<div style='border:1px solid {border};border-radius:6px;padding:4px 8px;margin:4px 0;font-size:90%'>"
    "<b>🔧 {name}</b> <span style='color:{color}'>{status}</span>"
    "<pre style='margin:2px 0;white-space:pre-wrap'>{input}</pre>{result}</div>"
)
_STATUS = {
    "input": ("input streaming…", "#dd8452", "#f0c8a8"),
    "ready": ("waiting for the message to end", "#777", "#ddd"),
    "running": ("running…", "#55a868", "#b5dcbf"),
    "done": ("done", "#55a868", "#b5dcbf"),
    "error": ("failed", "#c44e52", "#e8b4b5"),
}


class _Card:
    """One tool call's card, redrawn as its input streams and its result arrives."""

    def __init__(self, name: str) -> None:
        self.name, self.status, self.result = name, "input", ""
        self.input: dict[str, Any] = {}
        self.widget = widgets.HTML()
        self.draw()

    def draw(self) -> None:
        label, color, border = _STATUS[self.status]
        result = f"<div style='color:{color}'>→ {html.escape(self.result)}</div>" if self.result else ""
        self.widget.value = _CARD.format(
            name=html.escape(self.name),
            status=label,
            color=color,
            border=border,
            input=html.escape(json.dumps(self.input, ensure_ascii=False)),
            result=result,
        )


class AgentView(widgets.VBox):
    """A live display of one agent run: `handle` is the run's `on_event`."""

    def __init__(self) -> None:
        super().__init__()
        self.status = widgets.HTML()
        self.children = [self.status]
        self._thinking: widgets.HTML | None = None
        self._thought = ""
        self._text: widgets.HTML | None = None
        self._said = ""
        self._cards: dict[tuple[int, int], _Card] = {}  # (step, block index) -> card
        self._by_id: dict[str, _Card] = {}
        self.ended: str | None = None

    def _add(self, widget: widgets.Widget) -> None:
        self.children = [*self.children[:-1], widget, self.status]

    def handle(self, event: AgentEvent) -> None:
        """Show one event of the run."""
        kind = event.kind
        if kind == "step":
            self._thinking, self._text, self._thought, self._said = None, None, "", ""
            self.status.value = f"<i style='color:#777'>step {event.step}: waiting for the model…</i>"
        elif kind == "thinking":
            if self._thinking is None:
                self._thinking = widgets.HTML()
                self._add(self._thinking)
            self._thought += event.text
            self._thinking.value = _THINKING.format(note="", text=html.escape(self._thought))
            self.status.value = ""
        elif kind == "text":
            if self._text is None:
                self._text = widgets.HTML()
                self._add(self._text)
            self._said += event.text
            self._text.value = _TEXT.format(text=html.escape(self._said))
            self.status.value = ""
        elif kind == "tool_input":
            key = (event.step, event.index or 0)
            if key not in self._cards:
                self._cards[key] = _Card(event.name)
                self._by_id[event.tool_id] = self._cards[key]
                self._add(self._cards[key].widget)
                self._text = None  # text after a tool call starts a new paragraph
            card = self._cards[key]
            card.input = event.input
            card.draw()
        elif kind == "tool_ready":
            ready = self._cards.get((event.step, event.index or 0))
            if ready is not None:
                ready.input, ready.status = event.input, "ready"
                ready.draw()
        elif kind == "tool_start" and event.tool_id in self._by_id:
            card = self._by_id[event.tool_id]
            card.status = "running"
            card.draw()
        elif kind == "tool_done" and event.record is not None and event.record.id in self._by_id:
            card = self._by_id[event.record.id]
            card.status, card.result = ("error" if event.record.is_error else "done"), event.record.content
            card.draw()
        elif kind == "end":
            self.ended = event.stop_reason
            notes = {
                "end_turn": "",
                "step_limit": f"stopped: the step limit ({event.step}) was reached before the model finished",
                "max_tokens": "stopped: max_tokens was reached (an unfinished tool call is never run)",
            }
            note = notes.get(event.stop_reason or "", f"ended: {event.stop_reason}")
            self.status.value = f"<span style='color:#b00'>{html.escape(note)}</span>" if note else ""

    def failed(self, error: BaseException) -> None:
        """Say that the run broke, and that nothing of the broken step was run."""
        for card in self._cards.values():
            if card.status in ("input", "ready"):
                card.status, card.result = "error", "not run: its message never completed"
                card.draw()
        self.status.value = (
            f"<span style='color:#b00'>failed: {html.escape(type(error).__name__)}; nothing of the "
            "unfinished step was run</span>"
        )


class AgentWidget(BackgroundWidget):
    """A prompt box, Run and Stop, over an AgentView: the agent loop as a notebook app."""

    def __init__(self, client: Any, model: str, tools: Sequence[Tool], **options: Any) -> None:
        self.client, self.model, self.tools, self.options = client, model, list(tools), options
        self.prompt = widgets.Text(placeholder="Ask something the tools can answer", layout=widgets.Layout(flex="1"))
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.output = widgets.VBox(layout=widgets.Layout(max_height="480px", overflow="auto"))
        self.last_run: AgentRun | None = None
        self.view: AgentView | None = None
        self._start_background()
        self.run_button.on_click(self._on_run)
        self.stop_button.on_click(self._on_stop)
        super().__init__([widgets.HBox([self.prompt, self.run_button, self.stop_button]), self.output])

    def wait(self, timeout: float = 60.0) -> bool:
        """Block until the current run has ended; False on timeout."""
        return super().wait(timeout)

    def _on_run(self, _button: Any = None) -> None:
        text = self.prompt.value.strip()
        if not text or not self._idle.is_set():
            return
        self._idle.clear()
        self.run_button.disabled, self.stop_button.disabled = True, False
        self.view = AgentView()
        self.output.children = [widgets.HTML(f"<b>You:</b> {html.escape(text)}"), self.view]
        self._loop = self._loop or _LoopThread()
        self._task = self._loop.submit(self._run(text, self.view))

    def _on_stop(self, _button: Any = None) -> None:
        if self._task is not None and not self._idle.is_set():
            self._task.cancel()

    async def _run(self, text: str, view: AgentView) -> None:
        try:
            self.last_run = await run_agent(
                self.client, self.model, text, self.tools, on_event=view.handle, **self.options
            )
        except asyncio.CancelledError:
            view.status.value = "<span style='color:#b00'>stopped</span>"
            raise
        except AgentFailed as failed:
            view.failed(failed.error)
        finally:
            self.run_button.disabled, self.stop_button.disabled = False, True
            self._idle.set()
