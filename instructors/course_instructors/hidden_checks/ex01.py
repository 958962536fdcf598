"""Exercise 01, hidden checks: the live stream itself, empty and cut-short replies, other stop reasons."""

from __future__ import annotations

from course_utils.checks.base import expect, expect_equal, short, task_check
from course_utils.checks.env import Env
from course_utils.checks.ex01 import ABOUT, WEATHER_TOOL, _usage_matches, final_message, message_text, raw_events, timed

COUNT = "Count to 10"


@task_check("01.1", "reads the live stream in one pass", visibility="after_published")
def text_from_live_stream(env: Env) -> None:
    with env.client().messages.create(stream=True, **env.request(ABOUT, 40)) as stream:
        got = env.call(env.learner(), stream)
    expect_equal(got, message_text(final_message(env, ABOUT, 40)), "collect_text(stream)")


@task_check("01.1", "an empty reply gives an empty string", visibility="after_published")
def text_empty(env: Env) -> None:
    events = raw_events(env, COUNT, 50, stop_sequences=["1"])
    expect_equal(env.call(env.learner(), iter(events)), "", "collect_text(events) of a reply with no text")


@task_check("01.2", "a reply ended by a stop sequence", visibility="after_published")
def usage_stop_sequence(env: Env) -> None:
    _usage_matches(env, COUNT, 50, stop_sequences=["5"])


@task_check("01.2", "a reply that ends in a tool call", visibility="after_published")
def usage_tool_use(env: Env) -> None:
    got = _usage_matches(env, "What's the weather in Paris?", 200, tools=[WEATHER_TOOL])
    expect_equal(got["stop_reason"], "tool_use", "'stop_reason' of a reply that calls a tool")


@task_check("01.3", "first token well before the end of a long reply", visibility="after_published", timeout=20)
def ttft_before_total(env: Env) -> None:
    ttft, total, first, whole = timed(env, 90)
    expect(0 < ttft < total, f"expected 0 < ttft < total, got ttft={ttft:.2f} s, total={total:.2f} s")
    expect(
        total - ttft >= 0.5 * (whole - first),
        f"the gap between first token and end ({total - ttft:.2f} s) should be about {whole - first:.2f} s",
    )


@task_check("01.4", "returns the text of a reply cut short by max_tokens", visibility="after_published")
def stream_truncated(env: Env) -> None:
    pieces: list[str] = []
    got = env.call(env.learner(), env.client(), env.model, "Write 500 words about the ocean.", 12, pieces.append)
    want = message_text(final_message(env, "Write 500 words about the ocean.", 12))
    expect_equal(got, want, "the returned text")
    expect(all(isinstance(p, str) for p in pieces), f"on_text must get strings, got {short(pieces)}")
