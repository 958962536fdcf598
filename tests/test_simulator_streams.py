"""What the simulator's streams carry today: thinking, tool calls, citations, prefill, max_tokens 0, new event types.

The real SDK talks to the simulator over HTTP. Sources are named above each test: the installed SDK
(`anthropic/lib/streaming/_messages.py`), Anthropic's skills repository (skills/claude-api/...), the wire notes
(shared/notes/anthropic-wire-format.md) and the SDK's real recordings (shared/fixtures/anthropic-sdk-python).
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import pytest

from course_utils.simulator import Simulator
from course_utils.simulator.signing import REDACTED_TRIGGER

MODEL = "claude-haiku-4-5"
WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather for a city",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
}
TIME = {
    "name": "get_time",
    "description": "Get the local time in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
BUDGET = {"type": "enabled", "budget_tokens": 1024}


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def raw_events(sim: Simulator, body: dict[str, Any], headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The stream's events as the wire carries them (name checked against the JSON type)."""
    events = []
    with httpx.stream(
        "POST",
        sim.base_url + "/v1/messages",
        json={**body, "stream": True},
        headers={"x-api-key": "k", "anthropic-version": "2026-10-21", **(headers or {})},
    ) as response:
        assert response.status_code == 200
        for chunk in response.read().decode().split("\n\n"):
            if chunk.strip():
                name, data = chunk.split("\n", 1)
                event = json.loads(data.removeprefix("data: "))
                assert name == f"event: {event['type']}"
                events.append(event)
    return events


# -- thinking --------------------------------------------------------------------------------------------------------


def test_thinking_enabled_streams_a_thinking_block_first_then_text(client: anthropic.Anthropic) -> None:
    # SDK lib/streaming: thinking_delta appends to .thinking, signature_delta sets .signature; the wire notes §4.3
    # and the SDK's recorded stream-a-refusal.sse: one signature_delta just before the block's stop.
    with client.messages.stream(
        model=MODEL, max_tokens=2048, thinking=BUDGET, messages=user("Why is streaming useful?")
    ) as stream:
        seen = [event.type for event in stream]
        message = stream.get_final_message()
    assert [b.type for b in message.content] == ["thinking", "text"]
    thinking = message.content[0]
    assert "streaming" in thinking.thinking.lower() and thinking.signature
    assert "thinking" in seen and "signature" in seen and "text" in seen
    assert seen.index("thinking") < seen.index("signature") < seen.index("text")
    # Thinking tokens are output tokens (billed as output, counted against max_tokens).
    assert message.usage.output_tokens_details is not None
    assert 0 < message.usage.output_tokens_details.thinking_tokens < message.usage.output_tokens


def test_signature_delta_is_the_last_delta_of_the_thinking_block(fresh_sim: Simulator) -> None:
    events = raw_events(
        fresh_sim, {"model": MODEL, "max_tokens": 2048, "thinking": BUDGET, "messages": user("What is SSE?")}
    )
    block0 = [e for e in events if e.get("index") == 0]
    assert block0[0]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    deltas = [e["delta"]["type"] for e in block0 if e["type"] == "content_block_delta"]
    assert deltas[-1] == "signature_delta" and deltas.count("signature_delta") == 1
    assert set(deltas[:-1]) == {"thinking_delta"}
    assert block0[-1]["type"] == "content_block_stop"


def test_text_stream_yields_only_the_answer_not_the_thinking(client: anthropic.Anthropic) -> None:
    # SDK: text_stream yields text_delta strings only.
    with client.messages.stream(model=MODEL, max_tokens=2048, thinking=BUDGET, messages=user("What is SSE?")) as s:
        text = "".join(s.text_stream)
        message = s.get_final_message()
    assert text == message.content[1].text and text not in message.content[0].thinking


def test_max_tokens_reached_inside_thinking_ends_with_max_tokens_and_no_text(client: anthropic.Anthropic) -> None:
    # api-today.md: thinking tokens count toward max_tokens; budget_tokens < max_tokens is the rule, so a tight
    # max_tokens can still end inside the thinking.
    small = client.messages.create(
        model="claude-sonnet-4-6", max_tokens=20, thinking={"type": "adaptive"}, messages=user("Explain streaming")
    )
    assert small.stop_reason == "max_tokens" and [b.type for b in small.content] == ["thinking"]
    assert small.usage.output_tokens == 20


def test_sonnet_5_thinks_when_thinking_is_omitted_so_content_0_is_not_text(client: anthropic.Anthropic) -> None:
    # skills shared/model-migration.md: Sonnet 5 runs adaptive thinking when `thinking` is omitted, and its
    # display defaults to "omitted" (thinking blocks stream with empty text).
    message = client.messages.create(model="claude-sonnet-5", max_tokens=4000, messages=user("Hello"))
    assert message.content[0].type == "thinking" and message.content[0].thinking == ""
    assert message.content[0].signature
    with pytest.raises(AttributeError):
        _ = message.content[0].text  # the mistake lesson 04 shows: content[0] is not the answer
    assert next(b.text for b in message.content if b.type == "text")


def test_display_summarized_returns_the_thinking_text(client: anthropic.Anthropic) -> None:
    # skills SKILL.md: display "summarized" returns a readable summary of the reasoning.
    message = client.messages.create(
        model="claude-opus-4-7",
        max_tokens=4000,
        thinking={"type": "adaptive", "display": "summarized"},
        messages=user("What is a token?"),
    )
    assert message.content[0].type == "thinking" and "token" in message.content[0].thinking.lower()


def test_a_thinking_block_sent_back_unchanged_is_accepted_and_a_changed_one_is_a_400(
    client: anthropic.Anthropic,
) -> None:
    # skills SKILL.md: pass thinking blocks back exactly as received; the signature proves they are unmodified.
    tools = [WEATHER]
    first = client.messages.create(
        model=MODEL, max_tokens=2048, thinking=BUDGET, tools=tools, messages=user("What's the weather in Paris?")
    )
    assert [b.type for b in first.content] == ["thinking", "text", "tool_use"]
    call = first.content[-1]
    history = [
        *user("What's the weather in Paris?"),
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18 C, light rain"}]},
    ]
    answer = client.messages.create(model=MODEL, max_tokens=2048, thinking=BUDGET, tools=tools, messages=history)
    assert "18 C, light rain" in answer.content[-1].text  # the answer uses the tool's result
    forged = first.content[0].model_dump()
    forged["thinking"] += " (edited)"
    history[1] = {"role": "assistant", "content": [forged, *[b.model_dump() for b in first.content[1:]]]}
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model=MODEL, max_tokens=2048, thinking=BUDGET, tools=tools, messages=history)
    assert "cannot be modified" in info.value.body["error"]["message"]


def test_the_redacted_thinking_test_prompt_round_trips(client: anthropic.Anthropic) -> None:
    # Anthropic's extended-thinking docs: this test string makes the API return a redacted_thinking block, which
    # must be passed back unchanged.
    first = client.messages.create(model=MODEL, max_tokens=2048, thinking=BUDGET, messages=user(REDACTED_TRIGGER))
    assert first.content[0].type == "redacted_thinking" and first.content[0].data
    follow_up = [*user(REDACTED_TRIGGER), {"role": "assistant", "content": first.content}, *user("Thanks!")]
    again = client.messages.create(model=MODEL, max_tokens=2048, thinking=BUDGET, messages=follow_up)
    assert again.content[-1].type == "text"


# -- tools -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("choice", [{"type": "any"}, {"type": "tool", "name": "get_weather"}])
def test_forced_tool_use_starts_with_the_tool_use_block(client: anthropic.Anthropic, choice: dict[str, Any]) -> None:
    # api-today.md (skills tool-use-concepts): forced tool use puts the tool_use block first, with no text.
    message = client.messages.create(
        model=MODEL, max_tokens=500, tools=[WEATHER], tool_choice=choice, messages=user("What's the weather in Oslo?")
    )
    assert [b.type for b in message.content] == ["tool_use"] and message.stop_reason == "tool_use"
    assert message.content[0].input == {"location": "Oslo"}


def test_auto_may_explain_before_the_tool_call(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL, max_tokens=500, tools=[WEATHER], messages=user("What's the weather in Oslo?")
    )
    assert [b.type for b in message.content] == ["text", "tool_use"]


def test_two_things_asked_give_parallel_tool_calls_in_one_turn(client: anthropic.Anthropic) -> None:
    # skills tool-use-concepts.md: the model may call several tools in one turn; all results go back in one user
    # turn. disable_parallel_tool_use turns it off.
    message = client.messages.create(
        model=MODEL,
        max_tokens=500,
        tools=[WEATHER, TIME],
        messages=user("What's the weather in Paris and the local time in Tokyo?"),
    )
    calls = [b for b in message.content if b.type == "tool_use"]
    assert [(c.name, c.input) for c in calls] == [
        ("get_weather", {"location": "Paris"}),
        ("get_time", {"city": "Tokyo"}),
    ]
    assert len({c.id for c in calls}) == 2
    results = [
        {"type": "tool_result", "tool_use_id": calls[0].id, "content": "21 C"},
        {"type": "tool_result", "tool_use_id": calls[1].id, "content": "09:30"},
    ]
    answer = client.messages.create(
        model=MODEL,
        max_tokens=500,
        tools=[WEATHER, TIME],
        messages=[
            *user("What's the weather in Paris and the local time in Tokyo?"),
            {"role": "assistant", "content": message.content},
            {"role": "user", "content": results},
        ],
    )
    assert "21 C" in answer.content[0].text and "09:30" in answer.content[0].text
    single = client.messages.create(
        model=MODEL,
        max_tokens=500,
        tools=[WEATHER, TIME],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        messages=user("What's the weather in Paris and the local time in Tokyo?"),
    )
    assert len([b for b in single.content if b.type == "tool_use"]) == 1


def test_parallel_calls_stream_as_separate_blocks(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model=MODEL, max_tokens=500, tools=[WEATHER], messages=user("What's the weather in Paris and in Tokyo?")
    ) as stream:
        message = stream.get_final_message()
    assert [b.input for b in message.content if b.type == "tool_use"] == [{"location": "Paris"}, {"location": "Tokyo"}]


# -- citations -------------------------------------------------------------------------------------------------------

DOC = (
    "The Messages API streams a reply as server-sent events. Each event has a name and a JSON payload. "
    "The final event of a successful stream is message_stop."
)


def document(cite: bool) -> dict[str, Any]:
    return {
        "type": "document",
        "title": "Streaming notes",
        "citations": {"enabled": cite},
        "source": {"type": "text", "media_type": "text/plain", "data": DOC},
    }


def test_citations_are_real_substrings_of_the_document(client: anthropic.Anthropic) -> None:
    # SDK: citations_delta appends to the text block's citations; a char_location names the span it cites.
    question = {"type": "text", "text": "What is the final event of a successful stream?"}
    with client.messages.stream(
        model=MODEL, max_tokens=500, messages=[{"role": "user", "content": [document(True), question]}]
    ) as stream:
        seen = [event.type for event in stream]
        message = stream.get_final_message()
    assert "citation" in seen
    cited = [c for b in message.content if b.type == "text" for c in (b.citations or [])]
    assert cited and all(DOC[c.start_char_index : c.end_char_index] == c.cited_text for c in cited)
    assert any("message_stop" in c.cited_text for c in cited)  # the answer draws on the relevant sentence
    plain = client.messages.create(
        model=MODEL, max_tokens=500, messages=[{"role": "user", "content": [document(False), question]}]
    )
    assert "message_stop" in "".join(b.text for b in plain.content if b.type == "text")
    assert not any(b.citations for b in plain.content if b.type == "text")


# -- prefill, max_tokens 0, new event types --------------------------------------------------------------------------


def test_a_prefill_is_continued_not_answered_from_scratch(client: anthropic.Anthropic) -> None:
    # skills model-migration.md: a final assistant turn is continued by the model (on models that allow prefill).
    message = client.messages.create(
        model=MODEL,
        max_tokens=300,
        messages=[*user("Describe streaming as JSON."), {"role": "assistant", "content": "{"}],
    )
    assert isinstance(json.loads("{" + message.content[0].text), dict)


def test_a_prefill_on_a_model_that_rejects_it_is_a_400(client: anthropic.Anthropic) -> None:
    # skills models.md: no assistant prefill on Sonnet 4.6 and later.
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=300,
            messages=[*user("Describe streaming."), {"role": "assistant", "content": "Streaming is"}],
        )


def test_max_tokens_0_prewarms_with_empty_content(client: anthropic.Anthropic, fresh_sim: Simulator) -> None:
    # SDK docstring of max_tokens: 0 returns no content (stop_reason max_tokens) and is used to pre-warm a cache.
    message = client.messages.create(model=MODEL, max_tokens=0, messages=user("Hello"))
    assert message.content == [] and message.stop_reason == "max_tokens" and message.usage.output_tokens == 0
    events = raw_events(fresh_sim, {"model": MODEL, "max_tokens": 0, "messages": user("Hello")})
    assert [e["type"] for e in events if e["type"] != "ping"] == ["message_start", "message_delta", "message_stop"]


def test_tomorrows_event_types_on_request_and_the_sdk_passes_them_through(
    client: anthropic.Anthropic, fresh_sim: Simulator
) -> None:
    # The streaming docs: new event types may be added, and code should handle unknown ones gracefully.
    body = {"model": MODEL, "max_tokens": 50, "messages": user("What is SSE?")}
    types = {e["type"] for e in raw_events(fresh_sim, body, {"x-sim-future-events": "1"})}
    deltas = {
        e["delta"]["type"]
        for e in raw_events(fresh_sim, body, {"x-sim-future-events": "1"})
        if e["type"] == "content_block_delta"
    }
    assert "future_event" in types and "future_delta" in deltas
    assert "future_event" not in {e["type"] for e in raw_events(fresh_sim, body)}  # only on request
    with client.messages.stream(**body, extra_headers={"x-sim-future-events": "1"}) as stream:
        seen = [event.type for event in stream]
        message = stream.get_final_message()
    assert "future_event" in seen  # SDK 2.11 passes an unknown named event through; its accumulator ignores it
    plain = client.messages.create(**body)
    assert message.content[0].text == plain.content[0].text


def test_between_tools_narrates_only_the_steps_after_tool_results(client: anthropic.Anthropic) -> None:
    # SDK types/thinking_config_between_tools_param.py: no up-front thinking; short notes between tool calls come
    # back as thinking blocks. (claude-sonnet-5-5 is the catalogue's model that accepts it.)
    model, thinking = "claude-sonnet-5-5", {"type": "between_tools"}
    first = client.messages.create(
        model=model, max_tokens=2000, tools=[WEATHER], thinking=thinking, messages=user("What's the weather in Lima?")
    )
    assert [b.type for b in first.content] == ["text", "tool_use"]
    result = {"type": "tool_result", "tool_use_id": first.content[-1].id, "content": "24 C, clear"}
    second = client.messages.create(
        model=model,
        max_tokens=2000,
        tools=[WEATHER],
        thinking=thinking,
        messages=[
            *user("What's the weather in Lima?"),
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": [result]},
        ],
    )
    assert second.content[0].type == "thinking" and "24 C, clear" in second.content[0].thinking
    assert "24 C, clear" in second.content[-1].text
