"""Tests for course_utils.chat_widget, driving the widgets' Python model (no browser): type, click Send, click Stop."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import anthropic
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


def test_a_failed_reply_is_shown_not_kept_and_the_message_comes_back(chat: ChatWidget,
                                                                      fresh_sim: Simulator) -> None:
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
