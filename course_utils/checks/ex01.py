"""Exercise 01, blocking vs streaming: read a stream's raw events yourself, and time it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .base import Task, expect, expect_equal, short, task_check
from .env import Env

if TYPE_CHECKING:
    from anthropic.types import Message

# The course's accumulator and the SDK's stream helpers would do these tasks for the learner.
_ACCUMULATORS = ("course_utils.accumulator", "course_utils.history", "anthropic.lib.streaming")

TASKS = (
    Task("01.1", "collect_text", "Collect the text of a stream", forbid=_ACCUMULATORS),
    Task("01.2", "collect_usage", "Collect the usage and the stop reason", forbid=_ACCUMULATORS),
    Task("01.3", "measure_ttft", "Measure time to first token and total time", forbid=("course_utils.timing",)),
    Task("01.4", "stream_to", "Show the text as it arrives"),
)

ABOUT = "Tell me about volcanoes."
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def raw_events(env: Env, prompt: str, max_tokens: int, **extra: object) -> list:
    """The events `messages.create(stream=True)` yields for one request, collected by the check."""
    with env.client().messages.create(stream=True, **env.request(prompt, max_tokens, **extra)) as stream:
        return list(stream)


def final_message(env: Env, prompt: str, max_tokens: int, **extra: object) -> Message:
    """The same request answered whole: the simulator's replies are deterministic, so this is the truth."""
    return env.client().messages.create(**env.request(prompt, max_tokens, **extra))


def message_text(message: Message) -> str:
    """The text blocks of a message, joined."""
    return "".join(block.text for block in message.content if block.type == "text")


# -- 01.1 collect_text -------------------------------------------------------------------------------------------------


@task_check("01.1", "joins the text of every text delta")
def joins_text(env: Env) -> None:
    events = raw_events(env, ABOUT, 60)
    got = env.call(env.learner(), iter(events))
    expect_equal(got, message_text(final_message(env, ABOUT, 60)), "collect_text(events)")


@task_check("01.1", "keeps only text, not a tool call's JSON")
def skips_tool_json(env: Env) -> None:
    prompt, extra = "What's the weather in Paris?", {"tools": [WEATHER_TOOL]}
    events = raw_events(env, prompt, 200, **extra)
    got = env.call(env.learner(), iter(events))
    expect(isinstance(got, str), f"collect_text must return a str, got {short(got)}")
    expect_equal(got, message_text(final_message(env, prompt, 200, **extra)), "collect_text(events) with a tool call")


# -- 01.2 collect_usage ------------------------------------------------------------------------------------------------


def _usage_matches(env: Env, prompt: str, max_tokens: int, **extra: object) -> dict:
    events = raw_events(env, prompt, max_tokens, **extra)
    got = env.call(env.learner(), iter(events))
    expect(isinstance(got, dict), f"collect_usage must return a dict, got {short(got)}")
    want = final_message(env, prompt, max_tokens, **extra)
    for key, value in (
        ("input_tokens", want.usage.input_tokens),
        ("output_tokens", want.usage.output_tokens),
        ("stop_reason", want.stop_reason),
    ):
        expect(key in got, f"the dict has no {key!r} key (it has {short(sorted(got))})")
        expect_equal(got[key], value, f"{key!r}")
    return got


@task_check("01.2", "input and output tokens and the stop reason of a whole reply")
def usage_whole(env: Env) -> None:
    _usage_matches(env, ABOUT, 200)


@task_check("01.2", "a reply cut short by max_tokens")
def usage_truncated(env: Env) -> None:
    got = _usage_matches(env, "Write 500 words about the ocean.", 25)
    expect_equal(got["output_tokens"], 25, "'output_tokens' when max_tokens=25 stops the reply")


# -- 01.3 measure_ttft -------------------------------------------------------------------------------------------------


def warm_up(env: Env) -> None:
    """One unpaced stream through the SDK first, so its one-off start-up costs (lazy imports, the simulator's first
    request) are not charged to the learner's timing; it is not one of the learner's requests (`env.sent`)."""
    import anthropic

    with anthropic.Anthropic(base_url=env.sim.base_url, api_key="warm-up").messages.stream(
        **env.request(ABOUT, 5)
    ) as stream:
        stream.until_done()


def timed(env: Env, max_tokens: int) -> tuple[float, float, float, float]:
    """Run the learner's measure_ttft with pacing on; return their (ttft, total) and the plan's (first, total)."""
    warm_up(env)
    env.sim.speed = 2  # real pacing at twice real time: timing is the point, and checks stay quick
    learner, client = env.learner(), env.client()
    got = env.call(learner, client, env.model, ABOUT, max_tokens)
    expect(isinstance(got, tuple) and len(got) == 2, f"measure_ttft must return (ttft, total), got {short(got)}")
    expect(all(isinstance(x, (int, float)) for x in got), f"both numbers must be seconds, got {short(got)}")
    expect(env.sent, "measure_ttft sent no request through the client it was given")
    plan = env.plan(env.sent[-1])
    return float(got[0]), float(got[1]), plan.first_delay + plan.delays[0], plan.total_seconds()


@task_check("01.3", "time to first token matches the server's pace", timeout=20)
def ttft_matches(env: Env) -> None:
    ttft, _, first, _ = timed(env, 60)
    expect(
        first - 0.06 <= ttft <= first + 0.25,
        f"time to first token: expected about {first:.2f} s, got {ttft:.2f} s (start the clock just before the "
        "request, stop it at the first piece of text)",
    )


@task_check("01.3", "total time matches the server's pace", timeout=20)
def total_matches(env: Env) -> None:
    _, total, _, whole = timed(env, 60)
    expect(
        whole - 0.05 <= total <= whole + 0.35,
        f"total time: expected about {whole:.2f} s, got {total:.2f} s (stop the clock after the last event)",
    )


# -- 01.4 stream_to ----------------------------------------------------------------------------------------------------


@task_check("01.4", "calls on_text with pieces that add up to the reply", timeout=20)
def pieces_add_up(env: Env) -> None:
    pieces: list[str] = []
    got = env.call(env.learner(), env.client(), env.model, ABOUT, 60, pieces.append)
    want = message_text(final_message(env, ABOUT, 60))
    expect(len(pieces) > 1, f"on_text was called {len(pieces)} time(s): call it with each piece as it arrives")
    expect_equal("".join(pieces), want, "the pieces given to on_text, joined")
    expect_equal(got, want, "the returned text")


@task_check("01.4", "shows each piece as soon as it arrives", timeout=20)
def pieces_on_time(env: Env) -> None:
    warm_up(env)
    env.sim.speed = 2
    seen: list[float] = []
    learner, client = env.learner(), env.client()  # made before the clock starts: under load they take a while
    start = time.perf_counter()
    env.call(learner, client, env.model, ABOUT, 60, lambda text: seen.append(time.perf_counter()))
    expect(len(seen) > 1, f"on_text was called {len(seen)} time(s): call it with each piece as it arrives")
    plan = env.plan(env.sent[-1])
    first, spread = seen[0] - start, seen[-1] - seen[0]
    streaming = plan.total_seconds() - plan.first_delay - plan.delays[0]
    expect(
        first <= plan.first_delay + plan.delays[0] + 0.25 and spread >= 0.5 * streaming,
        "the pieces reached on_text all at once at the end: call it inside the loop over the stream, not after it",
    )
