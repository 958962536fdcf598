"""Exercise 06, hidden checks: non-ASCII data, max_tokens, events on time, overloads and dropped upstreams."""

from __future__ import annotations

import json

from course_utils.checks.base import expect, expect_equal, short, task_check
from course_utils.checks.env import Env
from course_utils.checks.ex06 import HELLO, app_url, expect_relayed, framed, parse, post_chat


@task_check("06.1", "non-ASCII text and a JSON list", visibility="after_published")
def frames_unicode(env: Env) -> None:
    expect_equal(parse(framed(env, "text", "Café ☕ 🌊")), [("text", "Café ☕ 🌊")], "a text event with accents")
    events = parse(framed(env, "items", [1, "été", {"a": None}]))
    expect(len(events) == 1, f"expected one event, parsed {short(events)}")
    expect_equal(json.loads(events[0][1]), [1, "été", {"a": None}], "the list, decoded")


@task_check("06.2", "honours max_tokens from the request", visibility="after_published", timeout=20)
def relays_max_tokens(env: Env) -> None:
    long = [{"role": "user", "content": "Write 500 words about the ocean."}]
    with app_url(env) as url:
        _, _, events, _ = post_chat(url, long, 20)
    expect_relayed(env, events, long, 20)


@task_check("06.2", "relays each piece as it arrives, not at the end", visibility="after_published", timeout=20)
def relays_on_time(env: Env) -> None:
    env.sim.speed = 2
    with app_url(env) as url:
        _, _, events, stamps = post_chat(url, [{"role": "user", "content": "Write 500 words about the ocean."}], 150)
    first = next((t for (e, _), t in zip(events, stamps, strict=True) if e == "text"), None)
    expect(
        first is not None and first < 0.6 * stamps[-1],
        f"the first text event came at {first} s of {stamps[-1]:.2f} s: yield each piece as it arrives",
    )


@task_check(
    "06.3", "an overload before the stream is a 5xx status, not a 200", visibility="after_published", timeout=20
)
def overload_status(env: Env) -> None:
    env.sim.inject("overloaded", retry_after=0.01)
    with app_url(env) as url:
        status, _, _, _ = post_chat(url, HELLO)
    expect(status >= 500, f"an upstream 529 before the stream should answer a 5xx (503 or 502), got {status}")


@task_check("06.3", "a dropped upstream connection ends with an error event", visibility="after_published", timeout=20)
def dropped_upstream(env: Env) -> None:
    env.sim.inject("disconnect_midstream", after=5)
    with app_url(env) as url:
        _, _, events, _ = post_chat(url, HELLO)
    names = [e for e, _ in events]
    expect(names and names[-1] == "error", f"the stream should end with an `error` event, got {short(names)}")
