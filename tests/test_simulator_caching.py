"""Prompt caching: breakpoints write prefixes, repeats within the TTL read them, and the token sums add up."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from course_utils.simulator.caching import (
    CacheStore,
    CacheUsage,
    breakpoints,
    cache_control_error,
    strip_cache_control,
)
from course_utils.simulator.tokens import count_request_tokens

MODEL = "claude-sonnet-4-5"
MIN = 1024  # [skills] prompt-caching.md: Sonnet 4.5's minimum cacheable prefix
BIG = "The course explains server-sent events in careful detail. " * 200  # well over 1024 simulated tokens
EPHEMERAL = {"type": "ephemeral"}


class Clock:
    """A fake monotonic clock the tests move by hand, so nothing ever sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> CacheStore:
    return CacheStore(now=clock)


def request(
    system: str = BIG, question: str = "What is SSE?", *, ttl: str | None = None, marker: bool = True
) -> dict[str, Any]:
    """A body with a large system prompt marked as a cache breakpoint and one user question."""
    block: dict[str, Any] = {"type": "text", "text": system}
    if marker:
        block["cache_control"] = {**EPHEMERAL, **({"ttl": ttl} if ttl else {})}
    return {"model": MODEL, "max_tokens": 100, "system": [block], "messages": [{"role": "user", "content": question}]}


def use(store: CacheStore, body: dict[str, Any], model: str = MODEL, min_tokens: int = MIN) -> CacheUsage:
    """The cache usage of one request, checking on the way that the parts always add up to the whole prompt."""
    usage = store.usage(body, model=model, min_tokens=min_tokens, count=count_request_tokens)
    assert usage.total_input_tokens == count_request_tokens(strip_cache_control(body))
    assert usage.cache_creation_input_tokens == usage.ephemeral_5m_input_tokens + usage.ephemeral_1h_input_tokens
    assert min(usage.input_tokens, usage.cache_creation_input_tokens, usage.cache_read_input_tokens) >= 0
    return usage


def test_without_cache_control_input_tokens_is_the_plain_count(store: CacheStore) -> None:
    body = request(marker=False)
    usage = use(store, body)
    assert usage == CacheUsage(input_tokens=count_request_tokens(body))
    assert use(store, body) == usage  # nothing was written, so nothing is read either
    assert len(store) == 0


def test_the_second_identical_request_reads_what_the_first_wrote(store: CacheStore) -> None:
    first = use(store, request())
    second = use(store, request())
    assert first.cache_creation_input_tokens > MIN and first.cache_read_input_tokens == 0
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens == 0
    assert second.input_tokens == first.input_tokens > 0  # the question after the breakpoint is never cached


def test_a_different_question_after_the_breakpoint_still_reads_the_prefix(store: CacheStore) -> None:
    first = use(store, request(question="What is SSE?"))
    second = use(store, request(question="And how do retries work with a long question?"))
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.input_tokens > first.input_tokens


def test_the_default_ttl_is_five_minutes_and_a_read_refreshes_it(store: CacheStore, clock: Clock) -> None:
    written = use(store, request()).cache_creation_input_tokens
    assert use(store, request()).ephemeral_5m_input_tokens == 0
    clock.now += 299
    assert use(store, request()).cache_read_input_tokens == written  # read at 299 s: refreshed to 5 min from now
    clock.now += 299
    assert use(store, request()).cache_read_input_tokens == written
    clock.now += 301
    expired = use(store, request())
    assert expired.cache_read_input_tokens == 0 and expired.cache_creation_input_tokens == written
    assert expired.ephemeral_5m_input_tokens == written


def test_a_one_hour_ttl_outlives_five_minutes(store: CacheStore, clock: Clock) -> None:
    first = use(store, request(ttl="1h"))
    assert first.ephemeral_1h_input_tokens == first.cache_creation_input_tokens > 0
    assert first.ephemeral_5m_input_tokens == 0
    clock.now += 3000
    assert use(store, request(ttl="1h")).cache_read_input_tokens == first.cache_creation_input_tokens
    clock.now += 3601
    assert use(store, request(ttl="1h")).cache_read_input_tokens == 0


def test_a_prefix_below_the_model_minimum_silently_does_not_cache(store: CacheStore) -> None:
    short = request(system="Be brief.")
    for _ in range(2):
        usage = use(store, short)
        assert usage.cache_creation_input_tokens == usage.cache_read_input_tokens == 0
        assert usage.input_tokens == count_request_tokens(strip_cache_control(short))
    # The same prompt caches on a model whose minimum it reaches.
    assert use(store, short, min_tokens=1).cache_creation_input_tokens > 0


def conversation(turns: list[str], *, marker_on_last: bool = True) -> dict[str, Any]:
    """A growing chat with the breakpoint on the last content block of the last user turn ([skills] pattern)."""
    messages: list[dict[str, Any]] = []
    for i, text in enumerate(turns):
        messages.append({"role": "user", "content": [{"type": "text", "text": text}]})
        if i < len(turns) - 1:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": f"Answer number {i}."}]})
    if marker_on_last:
        messages[-1]["content"][-1]["cache_control"] = dict(EPHEMERAL)
    return {"model": MODEL, "max_tokens": 100, "system": BIG, "messages": messages}


def test_a_growing_conversation_reads_the_previous_turn_and_writes_only_the_new_part(store: CacheStore) -> None:
    turns = ["First question about SSE?", "Second question, about retries?", "Third, about tokens?"]
    previous_prefix = 0
    for n in range(1, len(turns) + 1):
        body = conversation(turns[:n])
        usage = use(store, body)
        assert usage.cache_read_input_tokens == previous_prefix
        assert usage.cache_creation_input_tokens == usage.total_input_tokens - previous_prefix
        assert usage.input_tokens == 0  # the breakpoint is on the very last block
        previous_prefix = usage.total_input_tokens
    # The marker moved forward every turn, but the marker is not part of the prefix: turn 2's prefix is a hit.
    assert use(store, conversation(turns[:2])).cache_read_input_tokens > 0


def test_the_lookback_window_is_twenty_blocks(store: CacheStore) -> None:
    def body(extra_blocks: int) -> dict[str, Any]:
        content = [{"type": "text", "text": BIG, "cache_control": dict(EPHEMERAL)}]
        content += [{"type": "text", "text": f"note {i}"} for i in range(extra_blocks)]
        if extra_blocks:
            content[0].pop("cache_control")
            content[-1]["cache_control"] = dict(EPHEMERAL)
        return {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": content}]}

    written = use(store, body(0)).cache_creation_input_tokens
    assert use(store, body(20)).cache_read_input_tokens == written  # 20 blocks back: found
    store.reset()
    use(store, body(0))
    assert use(store, body(21)).cache_read_input_tokens == 0  # 21 blocks back: silently missed


def test_a_different_model_has_a_different_cache(store: CacheStore) -> None:
    use(store, request())
    other = use(store, request(), model="claude-opus-4-5", min_tokens=1)
    assert other.cache_read_input_tokens == 0 and other.cache_creation_input_tokens > 0
    assert use(store, request()).cache_read_input_tokens > 0  # the first model's entry is untouched


def test_changing_the_system_prompt_invalidates_it(store: CacheStore) -> None:
    use(store, request())
    changed = use(store, request(system=BIG + " Today is Tuesday."))
    assert changed.cache_read_input_tokens == 0 and changed.cache_creation_input_tokens > 0


def test_tools_render_first_and_a_system_breakpoint_caches_them_too(store: CacheStore) -> None:
    tools = [
        {
            "name": "get_weather",
            "description": "Weather for a city.",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    with_tools = {**request(), "tools": tools}
    written = use(store, with_tools).cache_creation_input_tokens
    assert written > use(CacheStore(), request()).cache_creation_input_tokens  # the tools are in the prefix
    renamed = copy.deepcopy(with_tools)
    renamed["tools"][0]["name"] = "weather"
    assert use(store, renamed).cache_read_input_tokens == 0  # [skills] a tool change invalidates everything


def test_tool_choice_only_invalidates_the_messages_tier(store: CacheStore) -> None:
    body = conversation(["One question?"])
    body["system"] = [{"type": "text", "text": BIG, "cache_control": dict(EPHEMERAL)}]
    first = use(store, body)
    forced = use(store, {**body, "tool_choice": {"type": "auto"}})
    system_only = use(CacheStore(), {**request(marker=True), "messages": [{"role": "user", "content": "x"}]})
    assert 0 < forced.cache_read_input_tokens < first.cache_creation_input_tokens
    assert forced.cache_read_input_tokens == system_only.cache_creation_input_tokens


def test_top_level_cache_control_caches_the_last_cacheable_block(store: CacheStore) -> None:
    body = {**request(marker=False), "cache_control": dict(EPHEMERAL)}
    assert [b.path for b in breakpoints(body)] == ["messages.0.content"]
    first = use(store, body)
    assert first.cache_creation_input_tokens == first.total_input_tokens and first.input_tokens == 0
    assert use(store, body).cache_read_input_tokens == first.total_input_tokens


def test_a_max_tokens_zero_request_pre_warms_the_cache(store: CacheStore) -> None:
    warm = {**request(question="warmup"), "max_tokens": 0}
    assert use(store, warm).cache_creation_input_tokens > 0
    real = use(store, request(question="What is a content_block_delta?"))
    assert real.cache_read_input_tokens > 0 and real.cache_creation_input_tokens == 0


def test_two_breakpoints_bill_each_span_at_its_own_ttl(store: CacheStore) -> None:
    body = conversation(["A long question? " + BIG])
    body["system"] = [{"type": "text", "text": BIG, "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    usage = use(store, body)
    system_part = use(CacheStore(), request(ttl="1h")).cache_creation_input_tokens
    assert usage.ephemeral_1h_input_tokens == system_part
    assert usage.ephemeral_5m_input_tokens == usage.cache_creation_input_tokens - system_part > 0


def test_reset_forgets_everything(store: CacheStore) -> None:
    use(store, request())
    assert len(store) == 1
    store.reset()
    assert len(store) == 0 and use(store, request()).cache_read_input_tokens == 0


def test_usage_fields_spell_the_wire_names() -> None:
    usage = CacheUsage(
        input_tokens=3,
        cache_creation_input_tokens=10,
        cache_read_input_tokens=5,
        ephemeral_5m_input_tokens=4,
        ephemeral_1h_input_tokens=6,
    )
    assert usage.usage_fields() == {
        "input_tokens": 3,
        "cache_creation_input_tokens": 10,
        "cache_read_input_tokens": 5,
        "cache_creation": {"ephemeral_5m_input_tokens": 4, "ephemeral_1h_input_tokens": 6},
    }


def test_the_request_body_is_not_modified(store: CacheStore) -> None:
    body = conversation(["Question?"])
    snapshot = copy.deepcopy(body)
    use(store, body)
    assert body == snapshot


def test_cache_control_errors() -> None:
    ok = request()
    assert cache_control_error(ok) is None
    bad_ttl = request(ttl="10m")
    assert cache_control_error(bad_ttl) == "system.0.cache_control.ttl: Input should be '5m' or '1h'"
    five = {
        "model": MODEL,
        "max_tokens": 1,
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": f"part {i}", "cache_control": dict(EPHEMERAL)} for i in range(5)],
            }
        ],
    }
    assert cache_control_error(five) == "A maximum of 4 blocks with cache_control may be provided. Found 5."


def test_a_string_and_the_same_text_as_a_block_are_the_same_prefix() -> None:
    # SDK types/message_param.py: a string content is shorthand for one text block, so both render the same prompt.
    store = CacheStore(now=lambda: 0.0)
    marked = {
        "role": "user",
        "content": [{"type": "text", "text": "And more?", "cache_control": {"type": "ephemeral"}}],
    }

    def body(first: Any) -> dict[str, Any]:
        return {
            "model": "m",
            "system": "Be brief. " * 900,
            "messages": [{"role": "user", "content": first}, {"role": "assistant", "content": "Hi."}, marked],
        }

    first = store.usage(body("Hello"), model="m", min_tokens=1024)
    second = store.usage(body([{"type": "text", "text": "Hello"}]), model="m", min_tokens=1024)
    assert first.cache_creation_input_tokens > 0 and second.cache_read_input_tokens > 0
