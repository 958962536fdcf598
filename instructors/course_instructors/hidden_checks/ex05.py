"""Exercise 05, hidden checks: rarer errors, no retry when it cannot help, truncation, backoff, tiny deadlines."""

from __future__ import annotations

import time

from course_utils.checks.base import expect, expect_equal, task_check
from course_utils.checks.env import API_KEY, Env
from course_utils.checks.ex05 import ABOUT, LONG, deadline_run, expect_verdict, full_text, retried


@task_check("05.1", "an error event that another attempt cannot fix, and plain bugs", visibility="after_published")
def refuses_other_errors(env: Env) -> None:
    import anthropic
    import httpx2

    request = httpx2.Request("POST", f"{env.sim.base_url}/v1/messages")
    body = {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}
    in_stream = anthropic.APIStatusError("bad", response=httpx2.Response(200, request=request), body=body)
    expect_verdict(env, in_stream, False, "an invalid_request_error event after the 200")
    expect_verdict(env, ValueError("a bug"), False, "a ValueError from your own code")
    expect_verdict(env, KeyError("text"), False, "a KeyError from your own code")


@task_check("05.1", "retries a connection that could not be made", visibility="after_published")
def retries_refused_connection(env: Env) -> None:
    import anthropic

    client = anthropic.Anthropic(base_url="http://127.0.0.1:9", api_key=API_KEY, max_retries=0)
    try:
        client.messages.create(**env.request(ABOUT, 10))
    except anthropic.APIConnectionError as error:
        expect_verdict(env, error, True, "a refused connection")
    else:
        raise AssertionError("port 9 answered")


@task_check("05.2", "does not retry a failure another attempt cannot fix", visibility="after_published")
def no_hopeless_retry(env: Env) -> None:
    got = retried(env, model="claude-sonnet-4-5-20250514")  # a model id that never existed: 404
    expect_equal((got["status"], got["attempts"]), ("failed", 1), "(status, attempts) after a 404")
    expect_equal(env.sim.stats()["requests"], 1, "the number of requests sent")


@task_check("05.2", "a reply cut short by max_tokens is truncated, not retried", visibility="after_published")
def truncated_not_retried(env: Env) -> None:
    got = retried(env, prompt=LONG, max_tokens=12)
    expect_equal((got["status"], got["attempts"]), ("truncated", 1), "(status, attempts)")
    expect_equal(got["text"], full_text(env, LONG, 12), "the text")


@task_check("05.2", "an overload before the stream: retried, with an empty partial", visibility="after_published")
def retries_overload(env: Env) -> None:
    env.sim.inject("overloaded", retry_after=0.01)
    got = retried(env)
    expect_equal(
        (got["status"], got["attempts"], got["partials"]), ("complete", 2, [""]), "(status, attempts, partials)"
    )


@task_check("05.2", "waits longer before each retry", visibility="after_published", timeout=20)
def backs_off(env: Env) -> None:
    env.sim.inject("error_midstream", count=3, after=2)
    start = time.perf_counter()
    retried(env, max_attempts=3, delay=0.2)
    elapsed = time.perf_counter() - start
    expect(
        elapsed >= 0.75 * (0.2 + 0.4),
        f"three attempts with delay=0.2 took {elapsed:.2f} s: wait delay, then twice that, before the retries",
    )


@task_check("05.3", "a deadline shorter than the first token", visibility="after_published", timeout=20)
def tiny_deadline(env: Env) -> None:
    env.sim.speed = 2
    text, finished, elapsed = deadline_run(env, LONG, 400, 0.01)
    env.sim.wait_idle(2)
    env.sim.speed = 0
    expect(not finished, "finished should be False when the deadline passed before the reply ended")
    expect(full_text(env, LONG, 400).startswith(text), "the text should be the start of the reply (or empty)")
    expect(elapsed < 1.5, f"stream_with_deadline returned after {elapsed:.2f} s for a 0.01 s deadline")
