"""Tests for course_utils.history: the real SDK against the simulator; only complete replies enter the history."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

from course_utils.history import AsyncConversation, Conversation, IncompleteStream, TurnFailed, assistant_turn
from course_utils.simulator import Simulator

MODEL = "claude-haiku-4-5"
WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather in a city",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
}
MID_STREAM = ["error_midstream", "disconnect_midstream", "stall_midstream"]
PRE_STREAM = ["overloaded", "rate_limit", "api_error"]


@pytest.fixture
def impatient(client: anthropic.Anthropic) -> anthropic.Anthropic:
    """No SDK retries and a short read timeout, so each fault surfaces at once and a stall ends quickly."""
    return client.with_options(max_retries=0, timeout=httpx2.Timeout(10, read=0.3))


def _chat_with(client: anthropic.Anthropic, turns: list[str], **options: Any) -> Conversation:
    chat = Conversation(client, MODEL, max_tokens=60, **options)
    for text in turns:
        chat.send(text)
    return chat


def test_a_turn_records_the_user_turn_and_one_complete_assistant_message(client: anthropic.Anthropic) -> None:
    chat = Conversation(client, MODEL, max_tokens=200)
    seen: list[str] = []
    result = chat.send("Tell me about streaming responses.", on_text=seen.append)
    assert len(seen) > 3  # it really streamed in pieces...
    assert chat.messages == [
        {"role": "user", "content": "Tell me about streaming responses."},
        {"role": "assistant", "content": "".join(seen)},
    ]  # ...and was recorded whole
    assert result.text == "".join(seen) and result.stop_reason == "end_turn" and not result.truncated


def test_the_history_is_what_makes_the_model_remember(client: anthropic.Anthropic) -> None:
    chat = _chat_with(client, ["Hi, my name is Ada."])
    assert "Ada" in chat.send("What's my name?").text
    assert "Ada" not in Conversation(client, MODEL, max_tokens=60).send("What's my name?").text


def test_input_tokens_grow_with_the_history_and_match_count_tokens(client: anthropic.Anthropic) -> None:
    chat = Conversation(client, MODEL, max_tokens=60, system="Be brief.")
    expected = []
    for text in ["Hi, my name is Ada.", "Tell me about the ocean.", "What's my name?"]:
        expected.append(chat.count_tokens([*chat.messages, {"role": "user", "content": text}]))
        chat.send(text)
    inputs = [u.input_tokens for u in chat.usage_per_turn]
    assert inputs == expected and inputs == sorted(inputs) and len(set(inputs)) == 3


def test_messages_is_a_copy(client: anthropic.Anthropic) -> None:
    chat = _chat_with(client, ["Hello"])
    view = chat.messages
    view[0]["content"] = "changed"
    view.clear()
    assert len(chat.messages) == 2 and chat.messages[0]["content"] == "Hello"


def test_a_reply_cut_by_max_tokens_is_recorded_and_flagged(client: anthropic.Anthropic) -> None:
    chat = Conversation(client, MODEL, max_tokens=5)
    result = chat.send("Tell me about the ocean.")
    assert result.truncated and result.usage.output_tokens == 5
    assert chat.messages[-1] == {"role": "assistant", "content": result.text}


@pytest.mark.parametrize("fault", MID_STREAM)
def test_a_failed_turn_leaves_the_history_as_it_was(
    fault: str, impatient: anthropic.Anthropic, fresh_sim: Simulator
) -> None:
    chat = _chat_with(impatient, ["Hi, my name is Ada."])
    before = chat.messages
    full = Conversation(impatient, MODEL, max_tokens=60, messages=before).send("Tell me about the ocean.").text
    fresh_sim.inject(fault, after=5)
    with pytest.raises(TurnFailed) as failed:
        chat.send("Tell me about the ocean.")
    assert chat.messages == before and len(chat.usage_per_turn) == 1
    assert failed.value.partial_text and full.startswith(failed.value.partial_text)  # what had arrived, kept
    assert failed.value.partial_text != full
    assert failed.value.__cause__ is failed.value.error
    assert fresh_sim.wait_idle(5)


@pytest.mark.parametrize("fault", PRE_STREAM)
def test_an_error_before_the_stream_leaves_no_dangling_user_turn(
    fault: str, impatient: anthropic.Anthropic, fresh_sim: Simulator
) -> None:
    chat = _chat_with(impatient, ["Hello"])
    fresh_sim.inject(fault)
    with pytest.raises(TurnFailed) as failed:
        chat.send("Tell me about the ocean.")
    assert isinstance(failed.value.error, anthropic.APIStatusError) and failed.value.partial_text == ""
    assert [m["role"] for m in chat.messages] == ["user", "assistant"]
    # The next turn goes out cleanly: no two user turns in a row for the API to merge.
    chat.send("Tell me about the ocean.")
    assert [m["role"] for m in chat.messages] == ["user", "assistant"] * 2


def test_a_stream_that_ends_without_a_stop_reason_is_not_recorded(
    client: anthropic.Anthropic, fresh_sim: Simulator
) -> None:
    cut = (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_01","type":"message",'
        b'"role":"assistant","model":"claude-haiku-4-5-20251001","content":[],"stop_reason":null,'
        b'"stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}}\n\n'
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
        b'"content_block":{"type":"text","text":""}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"Half an ans"}}\n\n'
    )
    fresh_sim.replay(cut)
    chat = Conversation(client, MODEL, max_tokens=60)
    with pytest.raises(TurnFailed) as failed:
        chat.send("Hello")
    assert isinstance(failed.value.error, IncompleteStream) and failed.value.partial_text == "Half an ans"
    assert chat.messages == []


def test_a_tool_call_is_recorded_as_blocks_and_answered(client: anthropic.Anthropic) -> None:
    chat = Conversation(client, MODEL, max_tokens=200, tools=[WEATHER])
    result = chat.send("What is the weather in Paris?")
    assert result.stop_reason == "tool_use"
    blocks = chat.messages[-1]["content"]
    assert [b["type"] for b in blocks] == ["text", "tool_use"] and blocks[1]["input"] == {"location": "Paris"}
    answer = chat.send([{"type": "tool_result", "tool_use_id": blocks[1]["id"], "content": "18 C and sunny"}])
    assert "18 C and sunny" in answer.text
    assert assistant_turn(result.message) == chat.messages[1]


def _tool_chat(client: anthropic.Anthropic) -> Conversation:
    """Exchange 1: question, tool call, tool result, answer. Exchange 2: a plain question and answer."""
    chat = Conversation(client, MODEL, max_tokens=200, tools=[WEATHER], system="Be brief.")
    call = chat.send("What is the weather in Paris?").message.content[1]
    chat.send([{"type": "tool_result", "tool_use_id": call.id, "content": "18 C and sunny"}])
    chat.send("Tell me about the ocean.")
    return chat


def test_trimming_never_separates_a_tool_call_from_its_result(client: anthropic.Anthropic) -> None:
    chat = _tool_chat(client)
    assert len(chat.messages) == 6
    # 5 messages would fit, but that would start the history with an orphan tool_use answer: drop the whole exchange.
    assert chat.trim_to_budget(500, counter=lambda messages: 100 * len(messages)) == 200
    assert chat.messages == _tool_chat(client).messages[4:]


def test_trimming_to_a_token_budget_drops_the_oldest_exchanges_first(client: anthropic.Anthropic) -> None:
    texts = ["Hi, my name is Ada.", "Tell me about the ocean.", "Tell me about Python.", "What's my name?"]
    chat = _chat_with(client, texts, system="Be brief.")
    full, everything = chat.count_tokens(), chat.messages
    budget = chat.count_tokens(everything[4:]) + 1  # room for the last two exchanges only
    tokens = chat.trim_to_budget(budget)
    assert tokens == chat.count_tokens() <= budget < full
    assert chat.messages == everything[4:] and chat.system == "Be brief."
    assert len(chat.usage_per_turn) == 4  # what was paid stays on record


def test_trimming_keeps_the_last_exchange_even_over_budget(client: anthropic.Anthropic) -> None:
    chat = _chat_with(client, ["Hello", "Tell me about the ocean."])
    tokens = chat.trim_to_budget(1)
    assert tokens > 1 and [m["role"] for m in chat.messages] == ["user", "assistant"]
    assert chat.messages[0]["content"] == "Tell me about the ocean."


def test_save_and_load_round_trip(client: anthropic.Anthropic, tmp_path: Path) -> None:
    chat = _tool_chat(client)
    path = chat.save(tmp_path / "chat.json")
    loaded = Conversation.load(path, client)
    assert (loaded.messages, loaded.system, loaded.model, loaded.options, loaded.max_tokens) == (
        chat.messages,
        chat.system,
        chat.model,
        chat.options,
        chat.max_tokens,
    )
    assert loaded.usage_per_turn == chat.usage_per_turn
    loaded.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == path.read_text()


def test_a_loaded_conversation_carries_on_where_it_stopped(client: anthropic.Anthropic, tmp_path: Path) -> None:
    path = _chat_with(client, ["Hi, my name is Ada."]).save(tmp_path / "chat.json")
    assert "Ada" in Conversation.load(path, client).send("What's my name?").text


def test_load_refuses_other_files_and_versions(client: anthropic.Anthropic, tmp_path: Path) -> None:
    path = _chat_with(client, ["Hello"]).save(tmp_path / "chat.json")
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "version": 99}))
    with pytest.raises(ValueError, match="version 99"):
        Conversation.load(path, client)
    path.write_text(json.dumps({"messages": []}))
    with pytest.raises(ValueError, match="not a saved conversation"):
        Conversation.load(path, client)


def test_async_turns_and_trimming(async_client: anthropic.AsyncAnthropic) -> None:
    asyncio.run(_async_turns_and_trimming(async_client))


async def _async_turns_and_trimming(async_client: anthropic.AsyncAnthropic) -> None:
    chat = AsyncConversation(async_client, MODEL, max_tokens=60)
    await chat.send("Hi, my name is Ada.")
    await chat.send("Tell me about the ocean.")
    assert "Ada" in (await chat.send("What's my name?")).text

    async def counter(messages: list[Any]) -> int:
        return await chat.count_tokens(messages)

    assert await chat.trim_to_budget(await chat.count_tokens(chat.messages[4:]), counter=counter) > 0
    assert len(chat.messages) == 2


def test_cancelling_an_async_turn_closes_the_stream_and_records_nothing(
    async_client: anthropic.AsyncAnthropic, fresh_sim: Simulator
) -> None:
    fresh_sim.speed = 1  # paced, so the reply is still streaming when it is cancelled
    asyncio.run(_cancel_mid_stream(async_client, fresh_sim))


async def _cancel_mid_stream(async_client: anthropic.AsyncAnthropic, fresh_sim: Simulator) -> None:
    chat = AsyncConversation(async_client, MODEL, max_tokens=2000)
    first_text = asyncio.Event()
    task = asyncio.create_task(chat.send("Write 500 words about the ocean.", on_text=lambda _: first_text.set()))
    await asyncio.wait_for(first_text.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert chat.messages == [] and chat.usage_per_turn == []
    assert await asyncio.to_thread(fresh_sim.wait_idle, 5)
    assert fresh_sim.stats()["streams_abandoned"] == 1 and fresh_sim.stats()["streams_completed"] == 0


# -- prompt caching ----------------------------------------------------------------------------------------------------

HANDBOOK = "\n".join(
    f"Rule {n}: when a visitor asks about room {n}, answer politely and briefly, with one example."
    for n in range(1, 241)
)  # above Haiku 4.5's 4096-token minimum


def _recording(fresh_sim: Simulator) -> tuple[anthropic.Anthropic, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []
    http = httpx2.Client(
        event_hooks={
            "request": [lambda r: sent.append(json.loads(r.content)) if r.url.path == "/v1/messages" else None]
        }
    )
    return anthropic.Anthropic(base_url=fresh_sim.base_url, api_key="x", http_client=http), sent


def test_cache_puts_breakpoints_on_the_system_prompt_and_the_newest_turn(fresh_sim: Simulator) -> None:
    client, sent = _recording(fresh_sim)
    chat = _chat_with(client, ["Hi, my name is Ada.", "Tell me about the ocean."], system="Be brief.", cache=True)
    body = sent[-1]
    assert body["system"] == [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    marked = [m for m in body["messages"] if any("cache_control" in b for b in m["content"])]
    assert marked == [body["messages"][-1]] and body["messages"][-1]["content"][-1]["cache_control"]
    assert all(isinstance(m["content"], list) for m in body["messages"])  # one rendering for every turn
    assert all("cache_control" not in json.dumps(m) for m in chat.messages)  # the stored history stays clean


def test_a_cached_conversation_writes_once_then_reads_a_growing_prefix(
    fresh_sim: Simulator, client: anthropic.Anthropic
) -> None:
    from course_utils.pricing import cost

    questions = ["Hi, my name is Ada.", "Tell me about the ocean.", "Tell me about Python.", "What's my name?"]
    plain = _chat_with(client, questions, system=HANDBOOK)
    assert fresh_sim.wait_idle()
    fresh_sim.reset()
    cached = _chat_with(client, questions, system=HANDBOOK, cache=True)
    usage = cached.usage_per_turn
    assert usage[0].cache_creation_input_tokens > 4096 and usage[0].cache_read_input_tokens == 0
    reads = [u.cache_read_input_tokens for u in usage[1:]]
    assert reads == sorted(reads) and reads[0] == usage[0].cache_creation_input_tokens  # each turn reads the last
    for u_plain, u_cached in zip(plain.usage_per_turn, usage, strict=True):  # about the same prompt, split three ways
        total = u_cached.input_tokens + u_cached.cache_creation_input_tokens + u_cached.cache_read_input_tokens
        assert total == pytest.approx(u_plain.input_tokens, rel=0.03)  # block framing and replies differ a little
    costs = [
        (cost(p, MODEL).total_usd, cost(c, MODEL).total_usd) for p, c in zip(plain.usage_per_turn, usage, strict=True)
    ]
    assert costs[0][1] > costs[0][0]  # the first write costs more than no caching
    assert all(c < 0.25 * p for p, c in costs[1:])  # reads cost about a tenth
    assert "Ada" in cached.send("What's my name?").text


def test_a_prefix_below_the_minimum_is_silently_not_cached(client: anthropic.Anthropic) -> None:
    chat = _chat_with(client, ["Hi", "Tell me about the ocean."], system="Be brief.", cache=True)
    assert all(u.cache_creation_input_tokens == 0 and u.cache_read_input_tokens == 0 for u in chat.usage_per_turn)


def test_cache_survives_save_and_load(tmp_path: Path, client: anthropic.Anthropic) -> None:
    chat = _chat_with(client, ["Hi"], cache=True)
    again = Conversation.load(chat.save(tmp_path / "c.json"), client)
    assert again.cache and "cache=True" in repr(again)


def test_thinking_blocks_go_back_whole_and_a_tool_turn_needs_them(client: anthropic.Anthropic) -> None:
    thinking = {"type": "enabled", "budget_tokens": 1024}
    chat = Conversation(client, MODEL, max_tokens=2000, thinking=thinking, tools=[WEATHER])
    result = chat.send("What's the weather in Paris?")
    recorded = chat.messages[-1]["content"]
    assert [b["type"] for b in recorded] == [b.type for b in result.message.content]
    assert recorded[0]["type"] == "thinking" and recorded[0]["signature"]
    call = next(b for b in recorded if b["type"] == "tool_use")
    answer = {"type": "tool_result", "tool_use_id": call["id"], "content": "18 °C"}
    assert chat.send([answer]).stop_reason == "end_turn"
    stripped = [
        m if m["role"] != "assistant" else {**m, "content": [b for b in m["content"] if b["type"] != "thinking"]}
        for m in chat.messages[:2]
    ]
    with pytest.raises(anthropic.BadRequestError, match="thinking"):
        client.messages.create(
            model=MODEL,
            max_tokens=2000,
            thinking=thinking,
            tools=[WEATHER],
            messages=[*stripped, {"role": "user", "content": [answer]}],
        )
