"""The real `anthropic` SDK against the simulator over real HTTP: replies, streaming, tools, limits, errors, faults."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import typing
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic.types import (
    Model,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawContentBlockStopEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStopEvent,
)

from course_utils.simulator import Simulator
from course_utils.simulator.plan import FIRST_TOKEN_SECONDS, make_plan
from course_utils.simulator.replies import compose

MODEL = "claude-haiku-4-5"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Get the current weather in a given location",
    "input_schema": {
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "The city, e.g. Paris"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["location"],
    },
}


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def text_of(message: Any) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


# -- replies ---------------------------------------------------------------------------------------------------------


def test_create_returns_an_on_topic_message(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model=MODEL, max_tokens=300, messages=user("Tell me about photosynthesis"))
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_01") and message._request_id.startswith("req_01")
    assert message.model == "claude-haiku-4-5-20251001"  # the dated id, as the real API echoes it
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert "photosynthesis" in text_of(message).lower()
    assert 0 < message.usage.output_tokens < 300 and message.usage.input_tokens > 0


def test_create_stream_yields_typed_events_in_order(client: anthropic.Anthropic) -> None:
    events = list(client.messages.create(model=MODEL, max_tokens=100, messages=user("Hello"), stream=True))
    kinds = [type(e) for e in events]
    # ping is on the wire (see test_simulator_fidelity) but the SDK hides it.
    assert kinds[:2] == [RawMessageStartEvent, RawContentBlockStartEvent]
    assert kinds[-3:] == [RawContentBlockStopEvent, RawMessageDeltaEvent, RawMessageStopEvent]
    deltas = events[2:-3]
    assert len(deltas) > 3 and all(isinstance(e, RawContentBlockDeltaEvent) for e in deltas)
    assert events[0].message.content == [] and events[0].message.usage.output_tokens == 1
    assert events[-2].delta.stop_reason == "end_turn"
    text = "".join(e.delta.text for e in deltas)
    whole = client.messages.create(model=MODEL, max_tokens=100, messages=user("Hello"))
    assert text == text_of(whole) and text.startswith("Hello!")
    assert events[-2].usage.output_tokens == whole.usage.output_tokens  # cumulative: the total, not the last delta


def test_stream_helper_text_stream_and_final_message(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model=MODEL, max_tokens=300, messages=user("Explain server-sent events")) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 5
    assert "".join(pieces) == text_of(final)
    assert final.stop_reason == "end_turn"
    assert stream.request_id and stream.request_id.startswith("req_01")


def test_async_client_create_and_stream(async_client: anthropic.AsyncAnthropic) -> None:
    async def main() -> tuple[Any, list[str], Any]:
        created = await async_client.messages.create(model=MODEL, max_tokens=200, messages=user("Tell me about Python"))
        async with async_client.messages.stream(
            model=MODEL, max_tokens=200, messages=user("Tell me about Python")
        ) as stream:
            pieces = [piece async for piece in stream.text_stream]
            final = await stream.get_final_message()
        return created, pieces, final

    created, pieces, final = asyncio.run(main())
    assert "python" in text_of(created).lower()
    assert "".join(pieces) == text_of(final) == text_of(created)  # same request, same reply, either way


# -- tools -----------------------------------------------------------------------------------------------------------


def test_tool_use_streams_text_then_a_tool_call_split_mid_key_and_mid_value(client: anthropic.Anthropic) -> None:
    fragments: list[str] = []
    with client.messages.stream(
        model=MODEL, max_tokens=300, tools=[WEATHER_TOOL], messages=user("What's the weather like in Paris today?")
    ) as stream:
        for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                fragments.append(event.delta.partial_json)
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    text, call = final.content
    assert text.type == "text" and "Paris" in text.text
    assert call.type == "tool_use" and call.name == "get_weather" and call.id.startswith("toolu_01")
    assert call.input == {"location": "Paris"}  # parsed to a dict by the SDK, not a JSON string
    assert fragments[0] == ""  # the real API's first fragment is always empty
    raw = "".join(fragments)
    assert raw == '{"location": "Paris"}'
    cuts = [len("".join(fragments[:i])) for i in range(1, len(fragments))]
    assert any(raw.index("location") < c < raw.index("location") + len("location") for c in cuts), fragments
    assert any(raw.index("Paris") < c < raw.index("Paris") + len("Paris") for c in cuts), fragments

    # The tool's result goes back as a user turn; the answer uses it.
    followup = client.messages.create(
        model=MODEL,
        max_tokens=300,
        tools=[WEATHER_TOOL],
        messages=[
            *user("What's the weather like in Paris today?"),
            {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in final.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18°C, light rain"}],
            },
        ],
    )
    assert followup.stop_reason == "end_turn"
    assert "18°C, light rain" in text_of(followup) and "get_weather" in text_of(followup)


def test_tool_choice_none_answers_in_text(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL,
        max_tokens=200,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "none"},
        messages=user("What's the weather like in Paris today?"),
    )
    assert [block.type for block in message.content] == ["text"] and message.stop_reason == "end_turn"


# -- limits and instructions -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_tokens", [1, 7, 50])
@pytest.mark.parametrize("stream", [False, True])
def test_max_tokens_stops_exactly_there(client: anthropic.Anthropic, max_tokens: int, stream: bool) -> None:
    kwargs: dict[str, Any] = dict(model=MODEL, max_tokens=max_tokens, messages=user("Write 300 words about the ocean"))
    if stream:
        with client.messages.stream(**kwargs) as s:
            message = s.get_final_message()
    else:
        message = client.messages.create(**kwargs)
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == max_tokens
    assert text_of(message)


def test_max_tokens_can_cut_a_tool_call(client: anthropic.Anthropic) -> None:
    full = client.messages.create(
        model=MODEL, max_tokens=300, tools=[WEATHER_TOOL], messages=user("What's the weather in Paris?")
    )
    budget = full.usage.output_tokens - 2
    cut = client.messages.create(
        model=MODEL, max_tokens=budget, tools=[WEATHER_TOOL], messages=user("What's the weather in Paris?")
    )
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == budget
    assert cut.content[1].type == "tool_use" and cut.content[1].input != full.content[1].input


def test_stop_sequence(client: anthropic.Anthropic) -> None:
    plain = client.messages.create(model=MODEL, max_tokens=100, messages=user("Count to 10"))
    assert text_of(plain) == "1, 2, 3, 4, 5, 6, 7, 8, 9, 10."
    with client.messages.stream(
        model=MODEL, max_tokens=100, messages=user("Count to 10"), stop_sequences=["5", "never"]
    ) as stream:
        message = stream.get_final_message()
    assert text_of(message) == "1, 2, 3, 4, "
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "5"


def test_system_prompt_changes_the_reply(client: anthropic.Anthropic) -> None:
    prompt = user("Tell me about the ocean")
    plain = text_of(client.messages.create(model=MODEL, max_tokens=400, messages=prompt))
    pirate = text_of(client.messages.create(model=MODEL, max_tokens=400, messages=prompt, system="You are a pirate."))
    brief = text_of(client.messages.create(model=MODEL, max_tokens=400, messages=prompt, system="Be brief."))
    assert pirate.startswith("Arr") and not plain.startswith("Arr")
    assert len(brief) < len(plain) / 2


# -- determinism and history -----------------------------------------------------------------------------------------


def test_same_request_same_reply_different_request_different_reply(client: anthropic.Anthropic) -> None:
    def ask(prompt: str) -> str:
        with client.messages.stream(model=MODEL, max_tokens=200, messages=user(prompt)) as stream:
            return "".join(stream.text_stream)

    assert ask("Tell me about tokens") == ask("Tell me about tokens")
    assert ask("Tell me about tokens") != ask("Tell me more about tokens")


def test_reply_depends_on_the_conversation_history(client: anthropic.Anthropic) -> None:
    question = "What's my name?"
    with_history = [
        *user("Hi! My name is Ada."),
        {"role": "assistant", "content": "Hello, Ada! Nice to meet you."},
        *user(question),
    ]
    remembered = text_of(client.messages.create(model=MODEL, max_tokens=100, messages=with_history))
    forgotten = text_of(client.messages.create(model=MODEL, max_tokens=100, messages=user(question)))
    assert "Ada" in remembered
    assert "Ada" not in forgotten and "don't know your name" in forgotten

    turns = [
        *user("Hello"),
        {"role": "assistant", "content": "Hi!"},
        *user("Tell me about SSE"),
        {"role": "assistant", "content": "SSE is..."},
        *user("How many messages have I sent you?"),
    ]
    assert "2 messages" in text_of(client.messages.create(model=MODEL, max_tokens=100, messages=turns))


# -- the other endpoints ---------------------------------------------------------------------------------------------


def test_count_tokens_matches_the_usage_of_the_same_request(client: anthropic.Anthropic) -> None:
    messages = user("Tell me about streaming responses")
    counted = client.messages.count_tokens(model=MODEL, messages=messages, system="Be brief.")
    used = client.messages.create(model=MODEL, max_tokens=50, messages=messages, system="Be brief.")
    assert counted.input_tokens == used.usage.input_tokens > 0


def test_models_list_is_the_sdks_model_ids_through_auto_pagination(client: anthropic.Anthropic) -> None:
    ids = [value for arg in typing.get_args(Model) for value in typing.get_args(arg) if isinstance(value, str)]
    # One entry per model, as the real list has: an alias and its dated snapshot are one model, listed by its
    # dated id (what retrieving the alias returns).
    expected = {i for i in ids if not any(re.fullmatch(re.escape(i) + r"-\d{8}", other) for other in ids)}
    first_page = client.models.list(limit=3)
    assert len(first_page.data) == 3 and first_page.has_more
    listed = [model.id for model in client.models.list(limit=3)]  # iterating follows after_id page by page
    assert set(listed) == expected and len(listed) == len(expected) > 3
    assert client.models.retrieve(MODEL).id == "claude-haiku-4-5-20251001"  # an alias resolves to its dated id


def test_unknown_model_is_a_404_naming_it(client: anthropic.Anthropic) -> None:
    model = "claude-sonnet-4-5-20250514"  # a plausible id that never existed
    with pytest.raises(anthropic.NotFoundError) as info:
        client.messages.create(model=model, max_tokens=10, messages=user("Hi"))
    assert info.value.status_code == 404 and info.value.type == "not_found_error"
    assert info.value.body["error"]["message"] == f"model: {model}"
    assert info.value.request_id.startswith("req_01")


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"max_tokens": anthropic.omit}, "max_tokens"),
        ({"max_tokens": -1}, "max_tokens"),  # 0 is allowed: it pre-warms the prompt cache (SDK docstring of max_tokens)
        ({"max_tokens": 10**6}, "max_tokens"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "system", "content": "Hi"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": ""}]}, "messages"),
        ({"messages": [{"role": "user", "content": []}]}, "messages.0"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "  "}]}]}, "messages"),
        ({"messages": [{"role": "user", "content": [{"type": "picture"}]}]}, "messages.0.content.0.type"),
        ({"extra_body": {"temperature": 1.5}}, "temperature"),  # 2.11 dropped the parameter; the API still checks it
        ({"stop_sequences": [""]}, "stop_sequences"),
        ({"tools": [{"name": "x"}]}, "tools.0.input_schema"),
    ],
)
def test_invalid_requests_are_400s_naming_the_field(
    fresh_sim: Simulator, client: anthropic.Anthropic, override: dict[str, Any], field: str
) -> None:
    # An explicit timeout skips the SDK's own client-side check of max_tokens, so the server gets to judge it.
    kwargs: dict[str, Any] = {"model": MODEL, "max_tokens": 10, "messages": user("Hi"), "timeout": 10, **override}
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(**kwargs)
    assert info.value.type == "invalid_request_error"
    assert info.value.body["error"]["message"].startswith(f"{field}:")
    assert [(r["status"], r["retry_count"]) for r in fresh_sim.requests()] == [(400, 0)]  # never retried


# -- faults, as the SDK sees them (the wire-format note, section 5) --------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "exception", "status", "error_type"),
    [
        ("overloaded", anthropic.OverloadedError, 529, "overloaded_error"),
        ("rate_limit", anthropic.RateLimitError, 429, "rate_limit_error"),
        ("api_error", anthropic.InternalServerError, 500, "api_error"),
    ],
)
def test_pre_stream_faults_are_the_real_apis_exceptions(
    fresh_sim: Simulator, kind: str, exception: type[anthropic.APIStatusError], status: int, error_type: str
) -> None:
    client = anthropic.Anthropic(base_url=fresh_sim.base_url, api_key="k", max_retries=0)
    fresh_sim.inject(kind)
    with pytest.raises(exception) as info:
        client.messages.create(model=MODEL, max_tokens=10, messages=user("Hi"))
    assert info.value.status_code == status and info.value.type == error_type
    assert info.value.response.headers["x-should-retry"] == "true"
    assert ("retry-after" in info.value.response.headers) == (kind == "rate_limit")
    assert type(info.value) is exception  # e.g. a 500 is not an OverloadedError, though both are server errors
    assert client.messages.create(model=MODEL, max_tokens=10, messages=user("Hi")).content  # one fault, then fine


def test_rate_limit_retry_after_is_honoured(fresh_sim: Simulator) -> None:
    client = anthropic.Anthropic(base_url=fresh_sim.base_url, api_key="k", max_retries=1)
    fresh_sim.inject("rate_limit")
    with pytest.raises(anthropic.RateLimitError) as info:
        client.with_options(max_retries=0).messages.create(model=MODEL, max_tokens=10, messages=user("Hi"))
    assert info.value.response.headers["retry-after"] == "1"  # the default, as the real API often says

    # The SDK waits what retry-after says: 0.05 s, well under its own first backoff (0.375-0.5 s).
    fresh_sim.reset()
    fresh_sim.inject("rate_limit", retry_after=0.05)
    client.messages.create(model=MODEL, max_tokens=10, messages=user("Hi"))
    first, second = fresh_sim.requests()
    assert (first["status"], second["status"]) == (429, 200)
    assert 0.05 <= second["time"] - first["time"] < 0.3


def test_fail_twice_then_succeed_is_retried_by_the_sdk(fresh_sim: Simulator, client: anthropic.Anthropic) -> None:
    fresh_sim.inject("overloaded", count=2, retry_after=0.01)
    with client.messages.stream(model=MODEL, max_tokens=50, messages=user("Hi")) as stream:  # default: 2 retries
        assert stream.get_final_text()
    log = fresh_sim.requests()
    assert [(r["retry_count"], r["status"], r["fault"]) for r in log] == [
        (0, 529, "overloaded"),
        (1, 529, "overloaded"),
        (2, 200, None),
    ]
    assert fresh_sim.stats()["faults_injected"] == 2 and fresh_sim.stats()["faults_pending"] == 0


def test_error_midstream_is_an_api_status_error_with_status_200(
    fresh_sim: Simulator, client: anthropic.Anthropic
) -> None:
    fresh_sim.inject("error_midstream", after=5)
    pieces: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as info:
        with client.messages.stream(model=MODEL, max_tokens=300, messages=user("Tell me about the ocean")) as stream:
            for piece in stream.text_stream:
                pieces.append(piece)
    error = info.value
    assert type(error) is anthropic.APIStatusError  # the class follows the status, and the status was 200
    assert error.status_code == 200 and error.type == "overloaded_error"
    snapshot = stream.current_message_snapshot
    assert snapshot.stop_reason is None and text_of(snapshot) == "".join(pieces) != ""
    assert len(fresh_sim.requests()) == 1  # nothing after the 200 is retried
    assert fresh_sim.wait_idle() and fresh_sim.stats()["streams_failed"] == 1


@pytest.fixture
def server_log() -> Iterator[list[logging.LogRecord]]:
    """What uvicorn logs meanwhile (its own handler writes to the stderr of the test that started the simulator)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("uvicorn.error").addHandler(handler)
    yield records
    logging.getLogger("uvicorn.error").removeHandler(handler)


def test_disconnect_midstream_is_a_raw_transport_error(
    fresh_sim: Simulator, client: anthropic.Anthropic, server_log: list[logging.LogRecord]
) -> None:
    fresh_sim.inject("disconnect_midstream", after=5)
    with pytest.raises(httpx2.RemoteProtocolError) as info:
        with client.messages.stream(model=MODEL, max_tokens=300, messages=user("Tell me about the ocean")) as stream:
            for _ in stream.text_stream:
                pass
    assert not isinstance(info.value, anthropic.APIError)  # `except anthropic.APIConnectionError` misses it
    assert text_of(stream.current_message_snapshot)
    assert len(fresh_sim.requests()) == 1
    assert fresh_sim.wait_idle() and fresh_sim.stats()["streams_failed"] == 1
    time.sleep(0.05)  # the server logs (or not) just after it counts the stream
    assert server_log == []  # no "Exception in ASGI application" for a drop the simulator made on purpose


def test_stall_midstream_is_a_read_timeout(fresh_sim: Simulator) -> None:
    client = anthropic.Anthropic(
        base_url=fresh_sim.base_url, api_key="k", max_retries=0, timeout=httpx2.Timeout(5.0, read=0.3)
    )
    fresh_sim.inject("stall_midstream", after=5)
    started = time.monotonic()
    with pytest.raises(httpx2.ReadTimeout):
        with client.messages.stream(model=MODEL, max_tokens=300, messages=user("Tell me about the ocean")) as stream:
            for _ in stream.text_stream:
                pass
    assert 0.3 <= time.monotonic() - started < 2
    assert fresh_sim.wait_idle() and fresh_sim.stats()["streams_abandoned"] == 1  # the client gave up


def test_a_short_stall_then_the_stream_resumes(fresh_sim: Simulator, client: anthropic.Anthropic) -> None:
    fresh_sim.inject("stall_midstream", after=3, stall_seconds=0.3)
    started = time.monotonic()
    with client.messages.stream(model=MODEL, max_tokens=100, messages=user("Count to 20")) as stream:
        assert stream.get_final_text() == ", ".join(str(n) for n in range(1, 21)) + "."
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize(
    ("kind", "exception"),
    [
        ("error_midstream", anthropic.OverloadedError),  # no stream to carry the error event: a plain 529
        ("disconnect_midstream", anthropic.APIConnectionError),
        ("stall_midstream", anthropic.APITimeoutError),
    ],
)
def test_without_a_stream_mid_response_faults_are_errors_the_sdk_retries(
    fresh_sim: Simulator, kind: str, exception: type[Exception]
) -> None:
    client = anthropic.Anthropic(
        base_url=fresh_sim.base_url, api_key="k", max_retries=0, timeout=httpx2.Timeout(5.0, read=0.3)
    )
    fresh_sim.inject(kind)
    with pytest.raises(exception):
        client.messages.create(model=MODEL, max_tokens=10, messages=user("Hi"))
    # Unlike a stream's, a failed JSON reply comes before the SDK has a response: it retries, and succeeds.
    fresh_sim.reset()
    fresh_sim.inject(kind, retry_after=0.01)
    assert client.with_options(max_retries=1).messages.create(model=MODEL, max_tokens=10, messages=user("Hi")).content
    assert [r["fault"] for r in fresh_sim.requests()] == [kind, None]


def test_fault_per_request_header(fresh_sim: Simulator) -> None:
    client = anthropic.Anthropic(base_url=fresh_sim.base_url, api_key="k", max_retries=0)
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(
            model=MODEL, max_tokens=10, messages=user("Hi"), extra_headers={"x-sim-fault": "overloaded"}
        )
    with pytest.raises(anthropic.APIStatusError) as info:
        with client.messages.stream(
            model=MODEL,
            max_tokens=100,
            messages=user("Count to 20"),
            extra_headers={"x-sim-fault": "error_midstream", "x-sim-fault-after": "4"},
        ) as s:
            for _ in s.text_stream:
                pass
    assert info.value.status_code == 200
    assert s.current_message_snapshot.content[0].text.startswith("1, 2")
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(model=MODEL, max_tokens=10, messages=user("Hi"), extra_headers={"x-sim-fault": "nope"})
    assert "unknown fault 'nope'" in bad.value.body["error"]["message"]


# -- streams the client walks away from ------------------------------------------------------------------------------


def test_a_stream_left_early_is_counted_abandoned(fresh_sim: Simulator, client: anthropic.Anthropic) -> None:
    fresh_sim.speed = 2  # pacing on: the reply is still being generated when the client leaves
    before = fresh_sim.stats()
    with client.messages.stream(model=MODEL, max_tokens=1000, messages=user("Write 500 words about the ocean")) as s:
        for n, _ in enumerate(s.text_stream):
            if n == 3:
                break
        assert fresh_sim.stats()["streams_open"] == 1
    assert fresh_sim.wait_idle(timeout=5)
    after = fresh_sim.stats()
    assert after["streams_abandoned"] == before["streams_abandoned"] + 1
    assert after["streams_open"] == 0 and after["streams_completed"] == before["streams_completed"]


def test_an_async_stream_left_early_is_counted_abandoned(
    fresh_sim: Simulator, async_client: anthropic.AsyncAnthropic
) -> None:
    fresh_sim.speed = 2

    async def leave_early() -> None:
        async with async_client.messages.stream(
            model=MODEL, max_tokens=1000, messages=user("Write 500 words about the ocean")
        ) as s:
            n = 0
            async for _ in s.text_stream:
                n += 1
                if n == 3:
                    break

    asyncio.run(leave_early())
    assert fresh_sim.wait_idle(timeout=5)
    stats = fresh_sim.stats()
    assert stats["streams_abandoned"] == 1 and stats["streams_open"] == 0 and stats["streams_completed"] == 0


# -- pacing ----------------------------------------------------------------------------------------------------------


def test_pacing_is_deterministic_and_scaled_by_speed() -> None:
    body = {"model": MODEL, "max_tokens": 200, "messages": user("Tell me about the ocean")}
    reply = compose(body)
    plans = [make_plan(body, reply, msg_id="msg_x", model=MODEL, speed=speed) for speed in (1, 1, 4, 0)]
    assert plans[0].delays == plans[1].delays and plans[0].first_delay == plans[1].first_delay  # same seed
    assert FIRST_TOKEN_SECONDS[0] <= plans[0].first_delay <= FIRST_TOKEN_SECONDS[1]
    assert plans[2].delays == pytest.approx([d / 4 for d in plans[0].delays])
    assert plans[3].total_seconds() == 0
    rate = plans[0].output_tokens / sum(plans[0].delays)
    assert 40 <= rate <= 100  # about 50-80 tokens/s, with jitter


def test_speed_scales_the_time_a_reply_takes(fresh_sim: Simulator, client: anthropic.Anthropic) -> None:
    def timed(speed: float) -> tuple[float, float]:
        fresh_sim.speed = speed
        started = time.monotonic()
        first = None
        with client.messages.stream(model=MODEL, max_tokens=20, messages=user("Count to 10")) as stream:
            for _ in stream.text_stream:
                first = first or time.monotonic() - started
        return first or 0.0, time.monotonic() - started

    first_1, total_1 = timed(1)
    first_4, total_4 = timed(4)
    assert 0.3 <= first_1 < 1.2  # time to first token, like the real API's
    assert total_4 < total_1 / 2  # loosely: 4x faster, minus fixed costs
