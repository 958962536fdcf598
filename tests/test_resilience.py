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
REQUEST: dict[str, Any] = {"model": MODEL, "max_tokens": 400,
                           "messages": [{"role": "user", "content": "Tell me about the ocean."}]}
ERRORS = {"overloaded": anthropic.OverloadedError, "rate_limit": anthropic.RateLimitError,
          "api_error": anthropic.InternalServerError, "error_midstream": anthropic.APIStatusError,
          "disconnect_midstream": httpx2.RemoteProtocolError, "stall_midstream": httpx2.ReadTimeout}
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
def test_one_failure_then_a_complete_answer_from_scratch(fault: str, impatient: anthropic.Anthropic,
                                                         fresh_sim: Simulator, sleeps: list[float]) -> None:
    full = _clean_reply(impatient)
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
def test_a_fault_that_persists_fails_after_max_attempts(fault: str, impatient: anthropic.Anthropic,
                                                        fresh_sim: Simulator, sleeps: list[float]) -> None:
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


@pytest.mark.parametrize(("options", "error"), [({"model": "claude-sonnet-4-5-20250514"}, anthropic.NotFoundError),
                                                ({"max_tokens": 0}, anthropic.BadRequestError)])
def test_a_request_the_api_rejects_is_not_retried(options: dict[str, Any], error: type[Exception],
                                                  impatient: anthropic.Anthropic, fresh_sim: Simulator,
                                                  sleeps: list[float]) -> None:
    outcome = _retry(impatient, sleeps, **options)
    assert outcome.status == "failed" and type(outcome.last_error) is error and len(outcome.attempts) == 1
    assert sleeps == [] and fresh_sim.stats()["requests"] == 1


def test_a_stream_that_ends_without_a_stop_reason_is_retried(impatient: anthropic.Anthropic,
                                                              fresh_sim: Simulator, sleeps: list[float]) -> None:
    with impatient.messages.stream(**REQUEST) as stream:
        events = [e for e in stream if e.type != "message_stop" and e.type != "message_delta"]
    fresh_sim.replay(b"".join(f"event: {e.type}\ndata: {e.to_json(indent=None)}\n\n".encode() for e in events
                              if e.type in {"message_start", "content_block_start", "content_block_delta"}))
    outcome = _retry(impatient, sleeps)
    assert outcome.status == "complete" and isinstance(outcome.attempts[0].error, IncompleteStream)
    assert outcome.text.startswith(outcome.attempts[0].text)


def test_the_sdk_retries_before_the_200_inside_one_attempt(client: anthropic.Anthropic, fresh_sim: Simulator,
                                                            sleeps: list[float]) -> None:
    fresh_sim.inject("overloaded", count=2, retry_after=0.01)
    outcome = _retry(client.with_options(max_retries=2), sleeps)
    assert outcome.status == "complete" and len(outcome.attempts) == 1 and sleeps == []
    assert [(r["status"], r["retry_count"]) for r in fresh_sim.requests()] == [(529, 0), (529, 1), (200, 2)]


def test_on_retry_hears_each_failed_attempt_with_its_delay(impatient: anthropic.Anthropic, fresh_sim: Simulator,
                                                           sleeps: list[float]) -> None:
    heard: list[tuple[Attempt, float]] = []
    fresh_sim.inject("disconnect_midstream", count=2, after=5)
    outcome = _retry(impatient, sleeps, on_retry=lambda attempt, delay: heard.append((attempt, delay)))
    assert [a for a, _ in heard] == outcome.attempts[:2] and [d for _, d in heard] == sleeps


def test_backoff_grows_with_jitter_and_honours_retry_after(impatient: anthropic.Anthropic,
                                                           fresh_sim: Simulator) -> None:
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
