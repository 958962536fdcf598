"""A streaming chat for JupyterLab, built from ipywidgets: the notebook-native form of the seeds' `input()` loop.

    chat = ChatWidget(AsyncConversation(course.async_client(), course.model, system="Be concise."))
    chat  # displays: transcript, input box, Send, Stop, a typing indicator and a token/cost counter

Why a background thread: button callbacks run on the kernel's main thread, between the messages it handles. A stream
read inside the Send callback would block that thread, so the click on Stop would wait in the queue until the reply
had finished, and the UI would freeze. Each turn instead runs as an asyncio task on an event loop in a thread of its
own; Stop cancels that task, the `async with` around the stream closes the HTTP response, and the server stops
generating (the simulator counts the stream as abandoned). The same code runs under pytest, with no browser: set
`chat.input.value`, call `chat.send_button.click()`, then `chat.wait()`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import html
import threading
from collections.abc import Coroutine
from typing import Any

import ipywidgets as widgets

from .history import AsyncConversation, TurnFailed, TurnResult
from .pricing import PRICES_CHECKED, cost, format_cost

__all__ = ["ChatWidget"]

TYPING = "<i style='color:#777'>Claude is typing…</i>"
_BUBBLE = (
    "<div style='margin:4px 0;padding:6px 10px;border-radius:8px;white-space:pre-wrap;line-height:1.4;"
    "max-width:85%;{style}'>"
    "<b>{who}</b> {text}{note}</div>"
)
_STYLES = {"user": "background:#e3efff;margin-left:auto", "assistant": "background:#f1f1f1"}


def _bubble(role: str, text: str, note: str = "") -> str:
    """One message as HTML (text escaped: a reply is data, not markup)."""
    shown = f" <span style='color:#b00'>[{html.escape(note)}]</span>" if note else ""
    return _BUBBLE.format(
        style=_STYLES[role], who="You:" if role == "user" else "Claude:", text=html.escape(text), note=shown
    )


class _LoopThread:
    """An asyncio event loop running forever in a daemon thread, so turns never block the kernel."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="chat-widget-loop", daemon=True)
        self.thread.start()

    def submit(self, coroutine: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        """Schedule a coroutine on the loop; cancelling the returned future cancels the task."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def stop(self) -> None:
        """Stop the loop and let its thread end."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


class BackgroundWidget(widgets.VBox):
    """A widget whose work runs on its own background event loop, so the kernel stays free: the shared part of
    the chat widget (lesson 04) and the agent widget (lesson 07). Subclasses define `_on_stop`."""

    def _start_background(self) -> None:
        self._loop: _LoopThread | None = None
        self._task: concurrent.futures.Future[Any] | None = None
        self._idle = threading.Event()
        self._idle.set()

    def _on_stop(self, _button: Any = None) -> None:
        raise NotImplementedError

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until the current turn has ended (completed, failed or stopped); False on timeout."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        """Stop any work in progress, end the background loop and remove the widget."""
        if getattr(self, "_idle", None) is not None:  # ipywidgets may call close() on a half-built widget
            self._on_stop()
            self.wait(5)
        loop = getattr(self, "_loop", None)
        if loop is not None:
            loop.stop()
            self._loop = None
        super().close()


class ChatWidget(BackgroundWidget):
    """A chat box that streams each reply token by token, can be stopped, and keeps the conversation."""

    def __init__(self, conversation: AsyncConversation, *, placeholder: str = "Type a message and press Send") -> None:
        self.conversation = conversation
        self.transcript = widgets.VBox(layout=widgets.Layout(max_height="420px", overflow="auto"))
        self.input = widgets.Text(placeholder=placeholder, layout=widgets.Layout(flex="1"))
        self.send_button = widgets.Button(description="Send", button_style="primary", icon="paper-plane")
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.status = widgets.HTML()  # the typing indicator, or what happened to the last turn
        self.counter = widgets.HTML()  # tokens and cost
        self.spent_usd = 0.0  # at list price, for turns whose model has a known price
        self.last_result: TurnResult | None = None
        self._start_background()
        self.send_button.on_click(self._on_send)
        self.stop_button.on_click(self._on_stop)
        super().__init__(
            [self.transcript, widgets.HBox([self.input, self.send_button, self.stop_button]), self.status, self.counter]
        )
        self._redraw_history()

    @property
    def busy(self) -> bool:
        """True while a reply is streaming."""
        return not self._idle.is_set()

    # -- callbacks (kernel main thread) ------------------------------------------------------------------------------

    def _on_send(self, _button: Any = None) -> None:
        text = self.input.value.strip()
        if not text or self.busy:
            return
        self.input.value = ""
        self._set_busy(True)
        # Shown at once, from this thread: the reply may take a while to start.
        reply = widgets.HTML(_bubble("assistant", ""))
        self.transcript.children = [*self.transcript.children, widgets.HTML(_bubble("user", text)), reply]
        self.status.value = TYPING
        self._loop = self._loop or _LoopThread()
        self._task = self._loop.submit(self._turn(text, reply))

    def _on_stop(self, _button: Any = None) -> None:
        if self._task is not None and self.busy:
            self._task.cancel()  # cancels the task on the loop; its `async with` closes the HTTP stream

    # -- one turn (background loop) ----------------------------------------------------------------------------------

    async def _turn(self, text: str, reply: widgets.HTML) -> None:
        pieces: list[str] = []

        def on_text(delta: str) -> None:
            if not pieces:
                self.status.value = ""  # the first token ends the wait
            pieces.append(delta)
            reply.value = _bubble("assistant", "".join(pieces))
            self.counter.value = f"this reply: ≈{_estimate_tokens(''.join(pieces))} tokens so far"

        try:
            result = await self.conversation.send(text, on_text=on_text)
        except asyncio.CancelledError:
            reply.value = _bubble("assistant", "".join(pieces), "stopped")
            self._count_unfinished("".join(pieces))
            self.status.value = (
                "Stopped. The partial reply is shown but not kept in the history "
                "(tokens generated before Stop may still be billed)."
            )
            raise
        except TurnFailed as failed:
            reply.value = _bubble("assistant", failed.partial_text, f"failed: {type(failed.error).__name__}")
            self._count_unfinished(failed.partial_text)
            self.status.value = (
                f"The reply failed ({html.escape(type(failed.error).__name__)}) and was not kept. "
                "Your message is back in the box: press Send to try again."
            )
            self.input.value = text
        else:
            self.last_result = result
            reply.value = _bubble("assistant", result.text, "cut off by max_tokens" if result.truncated else "")
            self._count(result)
        finally:
            self._set_busy(False)

    # -- display -----------------------------------------------------------------------------------------------------

    def _count(self, result: TurnResult) -> None:
        usage = result.usage
        charged = cost(usage, result.message.model)
        self.spent_usd += charged.total_usd if charged else 0.0
        turns = self.conversation.usage_per_turn
        total = sum(u.input_tokens + u.output_tokens for u in turns)
        self.counter.value = (
            f"turn {len(turns)}: {usage.input_tokens} in + {usage.output_tokens} out tokens, "
            f"{format_cost(charged)} · conversation: {total} tokens, ${self.spent_usd:.6f} "
            f"<span style='color:#777'>(list prices as of {PRICES_CHECKED})</span>"
        )

    def _count_unfinished(self, text: str) -> None:
        self.counter.value = (
            f"this reply: ≈{_estimate_tokens(text)} tokens before it ended (an estimate: a reply "
            "that does not finish reports no usage)"
        )

    def _redraw_history(self) -> None:
        """Show turns the conversation already had (a loaded one, for instance)."""
        bubbles = []
        for message in self.conversation.messages:
            content = message["content"]
            text = (
                content
                if isinstance(content, str)
                else " ".join(str(b.get("text", f"[{b.get('type')}]")) for b in content if isinstance(b, dict))
            )
            bubbles.append(widgets.HTML(_bubble(message["role"], text)))
        self.transcript.children = bubbles

    def _set_busy(self, busy: bool) -> None:
        (self._idle.clear if busy else self._idle.set)()
        self.send_button.disabled = busy
        self.stop_button.disabled = not busy


def _estimate_tokens(text: str) -> int:
    """A running estimate (about four characters a token); the exact count arrives with the final usage."""
    return max(1, round(len(text) / 4))
