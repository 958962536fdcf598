"""Exercise 07, hidden checks: no tool needed, parallel calls in one turn, a stream broken inside a tool call, JSON cut
anywhere, hanging and unknown tools, slow-first ordering, and two results after thinking."""

from __future__ import annotations

from course_utils.checks.base import CheckFailed, LearnerError, expect, expect_equal, short, task_check
from course_utils.checks.env import Env
from course_utils.checks.ex07 import (
    blocks_of,
    call,
    expect_results,
    expect_views,
    field,
    functions,
    results_of,
    roles,
    run_calls,
    run_loop,
    send_next,
    sleeper,
    text_in,
    thinking_step,
)


@task_check("07.1", "a question no tool answers: one request, end_turn", visibility="after_published", timeout=20)
def no_tool_needed(env: Env) -> None:
    calls: list[str] = []
    messages, stopped_by = run_loop(env, "Tell me about the ocean.", funcs=functions(calls))
    expect_equal(
        (roles(messages), stopped_by, calls), (["user", "assistant"], "end_turn", []), "(roles, stopped_by, tools run)"
    )
    expect("ocean" in text_in(messages[1]).lower(), f"the answer: {short(text_in(messages[1]))}")


@task_check("07.1", "two calls in one message: both results in ONE user turn", visibility="after_published", timeout=20)
def parallel_in_one_turn(env: Env) -> None:
    calls: list[str] = []
    messages, stopped_by = run_loop(env, "What is the population of Lagos and what is 12 * 7?", funcs=functions(calls))
    expect(sorted(calls) == ["calculator(12 * 7)", "lookup_population(Lagos)"], f"the tools run: {calls}")
    expect(
        roles(messages) == ["user", "assistant", "user", "assistant"],
        f"the roles: {roles(messages)} (both results go back in one user turn, not one turn each)",
    )
    ids = [field(b, "id") for b in blocks_of(messages[1]) if field(b, "type") == "tool_use"]
    expect_equal([field(r, "tool_use_id") for r in results_of(messages[2])], ids, "the tool_use_ids of the results")
    expect(
        "84" in text_in(messages[3]) and "15,388,000" in text_in(messages[3]),
        f"the answer should use both results, got {short(text_in(messages[3]), 160)}",
    )
    expect_equal(stopped_by, "end_turn", "stopped_by")


@task_check(
    "07.1",
    "a stream that breaks inside a tool call: nothing runs, the error reaches the caller",
    visibility="after_published",
    timeout=20,
)
def broken_stream_runs_nothing(env: Env) -> None:
    calls: list[str] = []
    env.sim.inject("error_midstream", after=14)  # inside the calculator's JSON
    try:
        run_loop(env, "What is 17 * 23?", funcs=functions(calls))
    except LearnerError:
        pass
    else:
        raise CheckFailed("run_loop returned although the first stream broke half way: let the error through")
    expect(
        calls == [],
        f"your loop ran {calls} from a message that never completed: run tools only once the "
        "whole message has arrived (get_final_message)",
    )


@task_check("07.2", "JSON cut inside keys, numbers, lists and nested objects", visibility="after_published")
def cut_anywhere(env: Env) -> None:
    expect_views(
        env,
        ["", '{"ci', 'ty": "Par', 'is", "days": [1, ', '2], "opt', 'ions": {"unit', 's": "c', '"}}'],
        "a made-up input",
    )
    expect_views(env, ["", '{"n": 12', '34, "ok": tr', "ue}"], "numbers and booleans")


@task_check(
    "07.3",
    "a call that hangs is cut off by the time limit, as an error result",
    visibility="after_published",
    timeout=20,
)
def hanging_call(env: Env) -> None:
    calls = [call(1, "get_weather", city="Oslo"), call(2, "calculator", expression="17 * 23")]
    got, wall = run_calls(
        env, calls, {"get_weather": sleeper(3600, "never"), "calculator": functions()["calculator"]}, timeout=0.3
    )
    expect(
        wall < 2,
        f"a call that never answers held run_calls for {wall:.1f} s with timeout=0.3: limit each "
        "call with asyncio.wait_for",
    )
    expect_results(got, calls)
    expect(got[0].get("is_error") is True, f"a timed-out call should give is_error: true, got {short(got[0])}")
    expect(got[1].get("content") == "391", f"the other call should still succeed, got {short(got[1])}")


@task_check(
    "07.3",
    "an unknown tool and a sync tool; the order holds when the first call is the slowest",
    visibility="after_published",
    timeout=20,
)
def unknown_and_order(env: Env) -> None:
    calls = [
        call(1, "get_weather", city="Paris"),
        call(2, "calculator", expression="12 * 7"),
        call(3, "teleport", city="Mars"),
    ]
    got, _ = run_calls(env, calls, {"get_weather": sleeper(0.3, "18 °C"), "calculator": functions()["calculator"]})
    expect_results(got, calls)
    expect_equal([b.get("content") for b in got[:2]], ["18 °C", "84"], "the first two results' content")
    expect(
        got[2].get("is_error") is True,
        f"a call to a tool that does not exist should give is_error: true, got {short(got[2])}",
    )


@task_check(
    "07.4", "two results after a thinking message go back in one user turn", visibility="after_published", timeout=20
)
def two_results(env: Env) -> None:
    history, message, results = thinking_step(env, "What is the population of Lagos and what is 12 * 7?")
    expect(len(results) == 2, "the simulator asked for two calls")
    answer = send_next(env, history, message, results)
    expect(
        "84" in text_in(answer) and "15,388,000" in text_in(answer),
        f"the answer should use both results, got {short(text_in(answer), 160)}",
    )


@task_check("07.4", "a longer history is kept as it was, in front", visibility="after_published", timeout=20)
def longer_history(env: Env) -> None:
    first, message, results = thinking_step(env)
    earlier = [
        {"role": "user", "content": "Hi, my name is Ada."},
        {"role": "assistant", "content": "Hello, Ada! Nice to meet you."},
    ]
    history = earlier + first
    try:
        got = env.call(env.learner(), history, message, results)
    except LearnerError as exc:
        raise CheckFailed(str(exc)) from None
    expect(isinstance(got, list) and got[:3] == history, "the new list should start with the whole history, unchanged")
