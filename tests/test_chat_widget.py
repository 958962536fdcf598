"""Tests for course_utils.chat_widget, driving the widgets' Python model (no browser): type, click Send, click Stop."""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import anthropic
import nbformat
import pytest

from course_utils.chat_widget import TYPING, ChatWidget
from course_utils.history import AsyncConversation
from course_utils.simulator import Simulator

MODEL = "claude-haiku-4-5"
LONG = "Write 500 words about the ocean."


def _until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


@pytest.fixture
def chat(async_client: anthropic.AsyncAnthropic) -> Iterator[ChatWidget]:
    widget = ChatWidget(AsyncConversation(async_client, MODEL, max_tokens=2000))
    yield widget
    widget.close()


def _say(chat: ChatWidget, text: str) -> None:
    chat.input.value = text
    chat.send_button.click()


def _bubbles(chat: ChatWidget) -> list[str]:
    return [child.value for child in chat.transcript.children]


def test_send_streams_a_reply_and_keeps_it(chat: ChatWidget) -> None:
    _say(chat, "Tell me about streaming responses.")
    assert chat.busy and chat.send_button.disabled and not chat.stop_button.disabled and chat.input.value == ""
    assert chat.wait(10)
    messages = chat.conversation.messages
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert len(_bubbles(chat)) == 2 and messages[1]["content"][:40] in _bubbles(chat)[1]
    assert not chat.send_button.disabled and chat.stop_button.disabled and chat.status.value == ""
    usage = chat.conversation.usage_per_turn[0]
    assert f"turn 1: {usage.input_tokens} in + {usage.output_tokens} out tokens, $" in chat.counter.value
    assert chat.spent_usd > 0


def test_the_history_is_kept_across_turns(chat: ChatWidget) -> None:
    for text in ["Hi, my name is Ada.", "What's my name?"]:
        _say(chat, text)
        assert chat.wait(10)
    assert len(chat.conversation.messages) == 4 and "Your name is Ada" in _bubbles(chat)[-1]
    assert chat.counter.value.startswith("turn 2:")


def test_a_typing_indicator_shows_until_the_first_token(chat: ChatWidget, fresh_sim: Simulator) -> None:
    fresh_sim.speed = 1  # real pacing: the first token takes 0.3-0.8 s
    seen: list[tuple[str, str]] = []
    _say(chat, "Hello")
    assert chat.status.value == TYPING and "Claude:</b> <" in _bubbles(chat)[-1]  # nothing yet
    reply = chat.transcript.children[-1]
    reply.observe(lambda change: seen.append((change["new"], chat.status.value)), "value")
    assert chat.wait(10)
    assert seen and all(status != TYPING for _, status in seen)  # gone by the time any text is shown
    assert chat.status.value == ""


def test_stop_cancels_the_upstream_and_keeps_no_partial_turn(chat: ChatWidget, fresh_sim: Simulator) -> None:
    fresh_sim.speed = 1
    _say(chat, LONG)
    assert _until(lambda: "[stopped]" not in _bubbles(chat)[-1] and len(_bubbles(chat)[-1]) > 300)
    chat.stop_button.click()
    assert chat.wait(5) and not chat.busy
    assert chat.conversation.messages == []  # neither the partial reply nor its question
    assert "[stopped]" in _bubbles(chat)[-1] and chat.status.value.startswith("Stopped.")
    assert "before it ended" in chat.counter.value  # an estimate: a stopped stream reports no usage
    assert fresh_sim.wait_idle(5)
    stats = fresh_sim.stats()
    assert stats["streams_abandoned"] == 1 and stats["streams_completed"] == 0  # the server stopped generating


def test_a_stopped_chat_carries_on(chat: ChatWidget, fresh_sim: Simulator) -> None:
    fresh_sim.speed = 1
    _say(chat, LONG)
    assert _until(lambda: len(_bubbles(chat)[-1]) > 300)
    chat.stop_button.click()
    assert chat.wait(5)
    fresh_sim.speed = 0
    _say(chat, "Hi, my name is Ada.")
    assert chat.wait(10) and [m["role"] for m in chat.conversation.messages] == ["user", "assistant"]


def test_a_failed_reply_is_shown_not_kept_and_the_message_comes_back(chat: ChatWidget, fresh_sim: Simulator) -> None:
    fresh_sim.inject("error_midstream", after=5)
    _say(chat, "Tell me about the ocean.")
    assert chat.wait(10)
    assert chat.conversation.messages == [] and "[failed: APIStatusError]" in _bubbles(chat)[-1]
    assert chat.input.value == "Tell me about the ocean." and "not kept" in chat.status.value
    assert fresh_sim.wait_idle(5)


def test_send_while_busy_and_empty_input_are_ignored(chat: ChatWidget, fresh_sim: Simulator) -> None:
    fresh_sim.speed = 1
    _say(chat, "Tell me about the ocean.")
    _say(chat, "And about Python?")
    chat.stop_button.click()
    assert chat.wait(5)
    _say(chat, "   ")
    assert not chat.busy and len(_bubbles(chat)) == 2 and fresh_sim.stats()["requests"] <= 1


def test_a_loaded_conversation_is_shown(async_client: anthropic.AsyncAnthropic) -> None:
    history = [{"role": "user", "content": "Hello <b>there</b>"}, {"role": "assistant", "content": "Hi!"}]
    widget = ChatWidget(AsyncConversation(async_client, MODEL, messages=history))
    try:
        assert len(_bubbles(widget)) == 2 and "Hello &lt;b&gt;there&lt;/b&gt;" in _bubbles(widget)[0]
    finally:
        widget.close()


def test_close_ends_the_background_loop(async_client: anthropic.AsyncAnthropic) -> None:
    widget = ChatWidget(AsyncConversation(async_client, MODEL, max_tokens=50))
    _say(widget, "Hello")
    assert widget.wait(10)
    thread = widget._loop.thread if widget._loop else None
    widget.close()
    assert thread is not None and not thread.is_alive()


# -- the same widget in a real JupyterLab, clicked in Chromium -------------------------------------------------------

LAB_NOTEBOOK_CELL = """
import anthropic
from course_utils.chat_widget import ChatWidget
from course_utils.history import AsyncConversation
client = anthropic.AsyncAnthropic(base_url={base_url!r}, api_key="test-key")
ui = ChatWidget(AsyncConversation(client, {model!r}, max_tokens=2000))
ui
"""


@pytest.fixture
def jupyterlab(tmp_path: Path, fresh_sim: Simulator) -> Iterator[str]:
    """A JupyterLab server on a free port, serving one notebook whose widget talks to the test simulator."""
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(LAB_NOTEBOOK_CELL.format(base_url=fresh_sim.base_url, model=MODEL).strip())]
    )
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "chat.ipynb")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = secrets.token_hex(8)
    lab = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--allow-root",
            f"--port={port}",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={tmp_path}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        assert _until(lambda: _answers(f"{base}/api?token={token}"), timeout=60), "JupyterLab did not start"
        yield f"{base}/lab/tree/chat.ipynb?token={token}"
    finally:
        lab.terminate()
        try:
            lab.wait(15)
        except subprocess.TimeoutExpired:
            lab.kill()
            lab.wait(5)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.browser
@pytest.mark.slow
def test_in_jupyterlab_stop_is_clicked_mid_stream_and_closes_the_upstream(
    jupyterlab: str, fresh_sim: Simulator
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    from browser_support import CHROMIUM_ARGS, chromium_path, screenshot

    fresh_sim.speed = 1
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.set_default_timeout(60_000)
            page.goto(jupyterlab)
            page.wait_for_selector("text=| Idle")  # the kernel is up: a keypress now is not lost
            page.click(".jp-Cell .jp-InputArea-editor")
            page.keyboard.press("Shift+Enter")
            box = page.wait_for_selector(".jupyter-widgets input[type=text]")
            page.set_default_timeout(10_000)
            box.fill(LONG)
            page.click(".jupyter-widgets button:has-text('Send')")
            page.wait_for_selector("text=Claude is typing")  # shown before the first token
            page.wait_for_function(
                "[...document.querySelectorAll('.widget-html-content')]"
                ".some(e => e.innerText.startsWith('Claude:') && e.innerText.length > 200)"
            )
            # The kernel's main thread is free while the reply streams, so this click is handled at once.
            page.click(".jupyter-widgets button:has-text('Stop')")
            page.wait_for_selector("text=[stopped]")
            screenshot(page, "chat-widget-stopped")
            assert fresh_sim.wait_idle(5)
            assert fresh_sim.stats()["streams_abandoned"] == 1 and fresh_sim.stats()["streams_completed"] == 0
            box.fill("Hi, my name is Ada.")
            page.click(".jupyter-widgets button:has-text('Send')")
            page.wait_for_selector("text=turn 1:")  # the stopped turn was not counted: this is the first
        finally:
            browser.close()
