"""Tests for course_utils.resilience: every fault kind against the retry helper, over real HTTP."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import pytest

from course_utils.history import IncompleteStream
from course_utils.resilience import Attempt, Backoff, is_retryable, retry_after, stream_with_retries
from course_utils.simulator import FAULTS, Simulator

MODEL = "claude-haiku-4-5"
REQUEST: dict[str, Any] = {
    "model": MODEL,
    "max_tokens": 400,
    "messages": [{"role": "user", "content": "Tell me about the ocean."}],
}
ERRORS = {
    "overloaded": anthropic.OverloadedError,
    "rate_limit": anthropic.RateLimitError,
    "api_error": anthropic.InternalServerError,
    "error_midstream": anthropic.APIStatusError,
    "disconnect_midstream": httpx2.RemoteProtocolError,
    "stall_midstream": httpx2.ReadTimeout,
}
MID_STREAM = {"error_midstream", "disconnect_midstream", "stall_midstream"}


@pytest.fixture
def impatient(client: anthropic.Anthropic) -> anthropic.Anthropic:
    """No SDK retries (so attempts = requests) and a short read timeout (so a stall ends quickly)."""
    return client.with_options(max_retries=0, timeout=httpx2.Timeout(10, read=0.3))


@pytest.fixture
def sleeps() -> list[float]:
    """The delays the helper asked for, recorded instead of slept."""
    return []


def _retry(client: anthropic.Anthropic, sleeps: list[float], **options: Any) -> Any:
    return stream_with_retries(client, sleep=sleeps.append, **{**REQUEST, **options})


def _clean_reply(client: anthropic.Anthropic) -> str:
    with client.messages.stream(**REQUEST) as stream:
        return stream.get_final_text()


def _inject(sim: Simulator, fault: str, count: int) -> None:
    sim.inject(fault, count=count, after=5, retry_after=0.01 if fault == "rate_limit" else None)


def test_every_fault_kind_is_covered() -> None:
    assert set(ERRORS) == set(FAULTS)


@pytest.mark.parametrize("fault", sorted(ERRORS))
def test_one_failure_then_a_complete_answer_from_scratch(
    fault: str, impatient: anthropic.Anthropic, fresh_sim: Simulator, sleeps: list[float]
) -> None:
    full = _clean_reply(impatient)
    assert fresh_sim.wait_idle()
    fresh_sim.reset()
    _inject(fresh_sim, fault, count=1)
    shown: list[str] = []
    outcome = _retry(impatient, sleeps, on_text=shown.append)
    assert outcome.status == "complete" and outcome.text == full and outcome.message is not None
    first, second = outcome.attempts
    assert type(first.error) is ERRORS[fault] and first.message is None and second.error is None
    assert outcome.partial_texts == [first.text]
    if fault in MID_STREAM:  # part of the answer had arrived: kept for display, not stitched to the retry
        assert first.text and full.startswith(first.text) and first.text != full
    else:
        assert first.text == ""
    assert "".join(shown) == first.text + full  # the display saw both attempts; it is told when one fails
    assert len(sleeps) == 1 and first.ended <= second.started
    assert fresh_sim.wait_idle(5) and fresh_sim.stats()["streams_open"] == 0
    assert fresh_sim.stats()["requests"] == 2


@pytest.mark.parametrize("fault", sorted(ERRORS))
def test_a_fault_that_persists_fails_after_max_attempts(
    fault: str, impatient: anthropic.Anthropic, fresh_sim: Simulator, sleeps: list[float]
) -> None:
    _inject(fresh_sim, fault, count=3)
    outcome = _retry(impatient, sleeps, max_attempts=3)
    assert outcome.status == "failed" and outcome.message is None and outcome.text == ""
    assert [a.number for a in outcome.attempts] == [1, 2, 3] and len(sleeps) == 2
    assert type(outcome.last_error) is ERRORS[fault]
    assert len(outcome.partial_texts) == 3 and all(bool(t) == (fault in MID_STREAM) for t in outcome.partial_texts)
    assert str(outcome).startswith(f"failed after 3 attempts: {type(outcome.last_error).__name__}")
    assert fresh_sim.wait_idle(5) and fresh_sim.stats()["streams_open"] == 0
    assert fresh_sim.stats()["requests"] == 3 and fresh_sim.stats()["faults_pending"] == 0


def test_max_tokens_is_truncated_not_retried(impatient: anthropic.Anthropic, sleeps: list[float]) -> None:
    outcome = _retry(impatient, sleeps, max_tokens=5)
    assert outcome.status == "truncated" and len(outcome.attempts) == 1 and sleeps == []
    assert outcome.message is not None and outcome.message.usage.output_tokens == 5
    assert str(outcome) == "truncated by max_tokens after 1 attempt"


EMPTY_MESSAGE = {"messages": [{"role": "user", "content": ""}]}  # (max_tokens 0 is valid now: a cache pre-warm)


@pytest.mark.parametrize(
    ("options", "error"),
    [({"model": "claude-sonnet-4-5-20250514"}, anthropic.NotFoundError), (EMPTY_MESSAGE, anthropic.BadRequestError)],
)
def test_a_request_the_api_rejects_is_not_retried(
    options: dict[str, Any],
    error: type[Exception],
    impatient: anthropic.Anthropic,
    fresh_sim: Simulator,
    sleeps: list[float],
) -> None:
    outcome = _retry(impatient, sleeps, **options)
    assert outcome.status == "failed" and type(outcome.last_error) is error and len(outcome.attempts) == 1
    assert sleeps == [] and fresh_sim.stats()["requests"] == 1


def test_a_stream_that_ends_without_a_stop_reason_is_retried(
    impatient: anthropic.Anthropic, fresh_sim: Simulator, sleeps: list[float]
) -> None:
    with impatient.messages.stream(**REQUEST) as stream:
        events = [e for e in stream if e.type != "message_stop" and e.type != "message_delta"]
    fresh_sim.replay(
        b"".join(
            f"event: {e.type}\ndata: {e.to_json(indent=None)}\n\n".encode()
            for e in events
            if e.type in {"message_start", "content_block_start", "content_block_delta"}
        )
    )
    outcome = _retry(impatient, sleeps)
    assert outcome.status == "complete" and isinstance(outcome.attempts[0].error, IncompleteStream)
    assert outcome.text.startswith(outcome.attempts[0].text)


def test_the_sdk_retries_before_the_200_inside_one_attempt(
    client: anthropic.Anthropic, fresh_sim: Simulator, sleeps: list[float]
) -> None:
    fresh_sim.inject("overloaded", count=2, retry_after=0.01)
    outcome = _retry(client.with_options(max_retries=2), sleeps)
    assert outcome.status == "complete" and len(outcome.attempts) == 1 and sleeps == []
    assert [(r["status"], r["retry_count"]) for r in fresh_sim.requests()] == [(529, 0), (529, 1), (200, 2)]


def test_on_retry_hears_each_failed_attempt_with_its_delay(
    impatient: anthropic.Anthropic, fresh_sim: Simulator, sleeps: list[float]
) -> None:
    heard: list[tuple[Attempt, float]] = []
    fresh_sim.inject("disconnect_midstream", count=2, after=5)
    outcome = _retry(impatient, sleeps, on_retry=lambda attempt, delay: heard.append((attempt, delay)))
    assert [a for a, _ in heard] == outcome.attempts[:2] and [d for _, d in heard] == sleeps


def test_backoff_grows_with_jitter_and_honours_retry_after(
    impatient: anthropic.Anthropic, fresh_sim: Simulator
) -> None:
    backoff = Backoff(initial=0.5, maximum=8.0, jitter=0.25)
    for retry, ceiling in enumerate([0.5, 1.0, 2.0, 4.0, 8.0, 8.0], start=1):
        delays = {backoff(retry) for _ in range(50)}
        assert all(0.75 * ceiling <= d <= ceiling for d in delays) and len(delays) > 1
    fresh_sim.inject("rate_limit", retry_after=3)
    with pytest.raises(anthropic.RateLimitError) as limited:
        impatient.messages.create(**REQUEST)
    assert retry_after(limited.value) == 3.0 and backoff(1, limited.value) == 3.0


def test_what_is_retryable(impatient: anthropic.Anthropic, fresh_sim: Simulator) -> None:
    fresh_sim.inject("error_midstream", after=5)
    with pytest.raises(anthropic.APIStatusError) as midstream:
        _drain(impatient)
    assert midstream.value.status_code == 200 and is_retryable(midstream.value)
    with pytest.raises(anthropic.NotFoundError) as missing:
        impatient.messages.create(**{**REQUEST, "model": "claude-3-5-sonnet-20241022"})
    assert not is_retryable(missing.value)
    unreachable = anthropic.Anthropic(base_url="http://127.0.0.1:9", api_key="x", max_retries=0)
    with pytest.raises(anthropic.APIConnectionError) as refused:
        unreachable.messages.create(**REQUEST)
    assert is_retryable(refused.value)
    assert not is_retryable(ValueError("a bug in a callback"))


def _drain(client: anthropic.Anthropic) -> None:
    with client.messages.stream(**REQUEST) as stream:
        stream.until_done()


# -- continuation: the docs' "error recovery" -------------------------------------------------------------------------

PREFILL_MODELS = {"claude-haiku-4-5": True, "claude-sonnet-4-6": False}


@pytest.fixture
def recorded(fresh_sim: Simulator) -> tuple[anthropic.Anthropic, list[dict[str, Any]]]:
    """An impatient client that records the JSON body of every request it sends."""
    import json

    sent: list[dict[str, Any]] = []
    http = httpx2.Client(
        event_hooks={
            "request": [
                lambda request: (
                    sent.append(json.loads(request.content)) if request.url.path.endswith("/messages") else None
                )
            ]
        }
    )
    client = anthropic.Anthropic(
        base_url=fresh_sim.base_url, api_key="x", max_retries=0, timeout=httpx2.Timeout(10, read=0.3), http_client=http
    )
    return client, sent


@pytest.mark.parametrize("model", sorted(PREFILL_MODELS))
@pytest.mark.parametrize("fault", sorted(ERRORS))
def test_continuation_keeps_the_partial_text_once(
    fault: str,
    model: str,
    fresh_sim: Simulator,
    recorded: tuple[anthropic.Anthropic, list[dict[str, Any]]],
    sleeps: list[float],
) -> None:
    client, sent = recorded
    _inject(fresh_sim, fault, count=1)
    shown: list[str] = []
    outcome = _retry(client, sleeps, model=model, recovery="continue", on_text=shown.append)
    first, second = outcome.attempts
    assert outcome.status == "complete" and outcome.recovery == "continue"
    assert "".join(shown) == outcome.text  # every piece shown once: nothing repeated, nothing lost
    if fault in MID_STREAM:
        assert first.text and second.continues and outcome.continued
        assert outcome.text.startswith(first.text) and outcome.text != first.text
        assert outcome.partial_texts == [first.text]
        retry = sent[1]["messages"]
        assert retry[:1] == REQUEST["messages"] and retry[1] == {"role": "assistant", "content": first.text.rstrip()}
        if PREFILL_MODELS[model]:
            assert len(retry) == 2  # the partial text is the start of the assistant turn
        else:
            assert len(retry) == 3 and retry[2]["role"] == "user" and first.text.rstrip()[-20:] in retry[2]["content"]
    else:  # nothing had arrived: the same request again
        assert first.text == "" and not second.continues and not outcome.continued
        assert sent[1] == sent[0]
    assert fresh_sim.wait_idle(5) and fresh_sim.stats()["streams_open"] == 0


@pytest.mark.parametrize("fault", sorted(MID_STREAM))
def test_continuation_survives_repeated_failures(
    fault: str, fresh_sim: Simulator, recorded: tuple[anthropic.Anthropic, list[dict[str, Any]]], sleeps: list[float]
) -> None:
    client, sent = recorded
    _inject(fresh_sim, fault, count=2)
    shown: list[str] = []
    outcome = _retry(client, sleeps, recovery="continue", on_text=shown.append, max_attempts=3)
    assert outcome.status == "complete" and [a.continues for a in outcome.attempts] == [False, True, True]
    kept = outcome.attempts[0].text + outcome.attempts[1].text
    assert sent[2]["messages"][-1] == {"role": "assistant", "content": kept.rstrip()}
    assert "".join(shown) == outcome.text and outcome.text.startswith(kept)
    assert fresh_sim.wait_idle(5) and fresh_sim.stats()["streams_open"] == 0


def test_a_model_that_rejects_prefill_refuses_it(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError, match="prefill"):
        client.messages.create(
            **{
                **REQUEST,
                "model": "claude-sonnet-4-6",
                "messages": [*REQUEST["messages"], {"role": "assistant", "content": "The"}],
            }
        )


def test_a_partial_thinking_block_is_restarted_not_continued(
    fresh_sim: Simulator, recorded: tuple[anthropic.Anthropic, list[dict[str, Any]]], sleeps: list[float]
) -> None:
    client, sent = recorded
    fresh_sim.inject("disconnect_midstream", after=5)  # still thinking: Sonnet 5 thinks by default
    outcome = _retry(client, sleeps, model="claude-sonnet-5", recovery="continue")
    assert outcome.status == "complete" and not outcome.continued
    assert outcome.attempts[0].snapshot is not None and outcome.attempts[0].snapshot.content[0].type == "thinking"
    assert sent[1] == sent[0]


def test_a_partial_tool_call_is_restarted_not_continued(
    fresh_sim: Simulator, recorded: tuple[anthropic.Anthropic, list[dict[str, Any]]], sleeps: list[float]
) -> None:
    client, sent = recorded
    tool = {
        "name": "get_weather",
        "description": "The weather in a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    request = {
        "messages": [{"role": "user", "content": "What's the weather in Paris?"}],
        "tools": [tool],
        "tool_choice": {"type": "tool", "name": "get_weather"},
    }
    fresh_sim.inject("disconnect_midstream", after=2)
    outcome = _retry(client, sleeps, recovery="continue", **request)
    assert outcome.status == "complete" and not outcome.continued and sent[1] == sent[0]
    assert outcome.message is not None and outcome.message.content[0].type == "tool_use"


def test_continuation_rules() -> None:
    from course_utils.resilience import CONTINUE_PROMPT, continuation_messages, supports_prefill

    assert supports_prefill("claude-haiku-4-5") and supports_prefill("claude-haiku-4-5-20251001")
    assert not supports_prefill("claude-sonnet-4-6") and not supports_prefill("claude-opus-4-8")
    assert not supports_prefill("a-model-nobody-knows")  # the user turn works everywhere
    start = [{"role": "user", "content": "Hi"}]
    assert continuation_messages(start, "Hello the", prefill=True) == [
        *start,
        {"role": "assistant", "content": "Hello the"},
    ]
    asked = continuation_messages(start, "Hello there ", prefill=False)
    assert asked[1] == {"role": "assistant", "content": "Hello there"}
    assert asked[2] == {"role": "user", "content": CONTINUE_PROMPT.format(tail="Hello there")}
    with pytest.raises(ValueError):
        stream_with_retries(None, recovery="resume", **REQUEST)  # type: ignore[arg-type]


def test_refusal_is_its_own_outcome_and_ratelimit_headers_are_read(client: anthropic.Anthropic) -> None:
    from course_utils.resilience import StreamOutcome, rate_limits

    with client.messages.stream(**REQUEST) as stream:
        message = stream.get_final_message()
        limits = rate_limits(stream.response.headers)
    refused = Attempt(1, "", message.model_copy(update={"stop_reason": "refusal"}), None, 0.0, 0.0)
    assert StreamOutcome([refused]).status == "refused" and str(StreamOutcome([refused])) == "refused after 1 attempt"
    assert {"requests-limit", "requests-remaining", "tokens-remaining"} <= set(limits)
