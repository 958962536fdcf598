"""Exercise 03, async streaming: many streams at once, which finished first, and cancelling the rest for real."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from .base import Task, expect, expect_equal, short, task_check
from .env import Env

TASKS = (
    Task("03.1", "gather_replies", "Stream several replies at once"),
    Task("03.2", "finish_order", "Which stream finished first"),
    Task("03.3", "first_reply", "Keep the first reply, cancel the rest"),
)

# Replies of clearly different lengths (at max_tokens=120 and speed 2 they end about 0.3 s apart), in a shuffled order.
PROMPTS = ["Write 500 words about coffee.", "Count to 20", "Write 500 words about the ocean.", "Count to 3"]
MAX_TOKENS = 120


def texts(env: Env, prompts: list[str], max_tokens: int) -> list[str]:
    """Each prompt's reply text, asked one at a time (the simulator's replies are deterministic)."""
    client = env.client()
    return [
        "".join(b.text for b in client.messages.create(**env.request(p, max_tokens)).content if b.type == "text")
        for p in prompts
    ]


def run_learner(env: Env, prompts: list[str], max_tokens: int = MAX_TOKENS, settle: bool = False) -> tuple[Any, float]:
    """Await the learner's coroutine function with a fresh async client; return its result and the wall time.

    With `settle`, wait (on the same event loop, so tasks the learner left running keep running) until the
    simulator has no stream open, so how each stream ended can be counted."""
    func = env.learner()
    expect(asyncio.iscoroutinefunction(func), f"`{func.__name__}` must be an `async def` function")

    async def scenario() -> tuple[Any, float]:
        client = env.async_client()
        start = time.perf_counter()
        result = await func(client, env.model, list(prompts), max_tokens)
        wall = time.perf_counter() - start
        if settle:
            for _ in range(150):
                if env.sim.stats()["streams_open"] == 0:
                    break
                await asyncio.sleep(0.02)
        return result, wall

    return env.run(f"{func.__name__}(...)", scenario)


def finish_times(env: Env, prompts: list[str] = PROMPTS) -> list[float]:
    """When each prompt's stream ends, from the plans of the requests actually sent, in prompt order."""
    by_prompt = {}
    for body in env.sent:
        content = body["messages"][-1]["content"]
        text = content if isinstance(content, str) else " ".join(b.get("text", "") for b in content)
        by_prompt[text] = env.plan(body).total_seconds()
    missing = [p for p in prompts if p not in by_prompt]
    expect(not missing, f"no request was sent for {short(missing)}")
    return [by_prompt[p] for p in prompts]


def expect_concurrent(wall: float, times: list[float]) -> None:
    """The streams overlapped: the whole took about as long as the longest, not the sum."""
    expect(
        wall < max(times) + 0.5,
        f"all the streams took {wall:.2f} s, about the sum of their times ({sum(times):.2f} s) rather than the "
        f"longest one ({max(times):.2f} s): start them all before awaiting any (asyncio.gather)",
    )


# -- 03.1 gather_replies -----------------------------------------------------------------------------------------------


@task_check("03.1", "returns every reply's text, in the order of the prompts")
def gathers_in_order(env: Env) -> None:
    got, _ = run_learner(env, PROMPTS)
    expect(isinstance(got, list), f"gather_replies must return a list of texts, got {short(got)}")
    expect_equal(got, texts(env, PROMPTS, MAX_TOKENS), "the texts")


@task_check("03.1", "streams them at the same time", timeout=20)
def gathers_concurrently(env: Env) -> None:
    env.sim.speed = 2
    _, wall = run_learner(env, PROMPTS)
    expect_concurrent(wall, finish_times(env))


# -- 03.2 finish_order -------------------------------------------------------------------------------------------------


def expect_finish_order(env: Env, prompts: list[str]) -> None:
    env.sim.speed = 2
    got, wall = run_learner(env, prompts)
    times = finish_times(env, prompts)
    expect(
        isinstance(got, list) and sorted(got) == list(range(len(prompts))),
        f"finish_order must return each index 0..{len(prompts) - 1} once, got {short(got)}",
    )
    want = sorted(range(len(prompts)), key=times.__getitem__)
    for earlier, later in itertools.pairwise(got):
        expect(
            times[earlier] <= times[later] + 0.1,
            f"expected {want} (the streams end after {', '.join(f'{t:.2f} s' for t in times)}), got {got}",
        )
    expect_concurrent(wall, times)


@task_check("03.2", "gives the prompts' indices in the order their streams finished", timeout=20)
def order_of_finish(env: Env) -> None:
    expect_finish_order(env, PROMPTS)


# -- 03.3 first_reply --------------------------------------------------------------------------------------------------


def expect_first(env: Env, prompts: list[str]) -> None:
    env.sim.speed = 2
    got, _ = run_learner(env, prompts)
    times = finish_times(env, prompts)
    expect(isinstance(got, tuple) and len(got) == 2, f"first_reply must return (index, text), got {short(got)}")
    first = min(range(len(prompts)), key=times.__getitem__)
    expect_equal(got[0], first, "the index of the first stream to finish")
    expect_equal(got[1], texts(env, [prompts[first]], MAX_TOKENS)[0], "its text")


@task_check("03.3", "returns the index and text of the first reply to finish", timeout=20)
def first_wins(env: Env) -> None:
    expect_first(env, PROMPTS)


@task_check("03.3", "cancels the other streams, closing their connections", timeout=20)
def others_cancelled(env: Env) -> None:
    env.sim.speed = 2
    got, wall = run_learner(env, PROMPTS, settle=True)
    stats = env.sim.stats()
    times = finish_times(env)
    expect_equal(stats["streams_completed"], 1, "the number of streams that ran to the end (only the winner should)")
    expect_equal(
        stats["streams_abandoned"],
        len(PROMPTS) - 1,
        "the number of streams whose connection was closed early (cancel the other tasks, and use "
        "`async with client.messages.stream(...)` so cancelling closes the connection)",
    )
    expect(wall < sorted(times)[1], f"first_reply took {wall:.2f} s: return as soon as the first stream ends")
