"""Exercise 04, hidden checks: an error event mid-turn, tool exchanges kept whole, budgets too small, a failed stop."""

from __future__ import annotations

import copy
from typing import Any

from course_utils.checks.base import LearnerError, expect, task_check
from course_utils.checks.env import Env, as_messages
from course_utils.checks.ex04 import (
    PROMPTS,
    WEATHER_TOOL,
    content_text,
    conversation,
    count,
    expect_failed_turn_untouched,
    expect_trim,
    run_turn,
)


@task_check("04.1", "a turn ended by an error event leaves the history as it was", visibility="after_published")
def error_event_turn(env: Env) -> None:
    expect_failed_turn_untouched(env, "error_midstream")


def tool_conversation(env: Env) -> list[dict[str, Any]]:
    """Ada, then a weather question answered through a tool call, then one more exchange."""
    client = env.client()
    history = conversation(env, ["Hi, my name is Ada."])
    history.append({"role": "user", "content": "What's the weather in Paris?"})
    call = client.messages.create(model=env.model, max_tokens=200, tools=[WEATHER_TOOL], messages=as_messages(history))
    history.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in call.content]})
    tool_use = next(b for b in call.content if b.type == "tool_use")
    history.append(
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "18 °C and sunny"}]}
    )
    answer = client.messages.create(
        model=env.model, max_tokens=200, tools=[WEATHER_TOOL], messages=as_messages(history)
    )
    history.append({"role": "assistant", "content": content_text(answer.content)})
    return history + conversation(env, ["Tell me about coffee."])[-2:]


@task_check("04.2", "never separates a tool call from its result", visibility="after_published", timeout=20)
def keeps_tool_exchange_whole(env: Env) -> None:
    history = tool_conversation(env)
    # Just too small for the tail from the question that led to the call: a cut at the tool_result (a tail the API
    # rejects, even to count) must not happen; the answer is the exchange after the tool exchange.
    expect_trim(env, history, count(env, history[2:]) - 1, "with a budget that would cut a tool exchange in half")


@task_check("04.2", "an empty list when not even the last exchange fits", visibility="after_published", timeout=20)
def nothing_fits(env: Env) -> None:
    history = conversation(env, PROMPTS[:2])
    expect_trim(env, history, 3, "with a budget of 3 tokens")


@task_check("04.3", "a turn that fails mid-stream leaves no trace", visibility="after_published", timeout=20)
def stoppable_fails(env: Env) -> None:
    history: list[dict[str, Any]] = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    before = copy.deepcopy(history)
    env.sim.inject("disconnect_midstream", after=5)
    try:
        run_turn(env, history, "Tell me about the ocean.")
    except LearnerError:  # the failure reached the caller, as it should
        pass
    expect(history == before, "after a failed turn the history should be unchanged")
