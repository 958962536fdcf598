"""Exercise 05, error handling: what is worth retrying, a retrying stream that keeps partial text, a deadline."""

from __future__ import annotations

import time
from typing import Any

from .base import Task, expect, expect_equal, short, task_check
from .env import Env

_RESILIENCE = ("course_utils.resilience", "course_utils.history")

TASKS = (
    Task("05.1", "is_retryable", "What is worth another attempt", forbid=_RESILIENCE),
    Task("05.2", "stream_with_retries", "A retrying stream that keeps partial text", forbid=_RESILIENCE),
    Task("05.3", "stream_with_deadline", "A total deadline", forbid=_RESILIENCE),
)

ABOUT = "Tell me briefly about the ocean."  # 37 tokens, end_turn
LONG = "Write 500 words about the ocean."


def error_from(env: Env, fault: str | None = None, *, read_timeout: float = 10.0, **request: Any) -> BaseException:
    """The exception a real stream raises for `fault` (SDK retries off), or for a bad `request`."""
    import httpx2

    if fault:
        env.sim.inject(fault, after=5, retry_after=0.01)
    client = env.client(timeout=httpx2.Timeout(10, read=read_timeout))
    try:
        with client.messages.stream(**{**env.request(ABOUT, 100), **request}) as stream:
            for _ in stream.text_stream:
                pass
    except Exception as exc:  # the error under study
        return exc
    raise AssertionError(f"the simulator did not fail for {fault or request}")


def expect_verdict(env: Env, error: BaseException, want: bool, what: str) -> None:
    got = env.call(env.learner(), error)
    expect(isinstance(got, bool), f"is_retryable must return True or False, got {short(got)}")
    expect(
        got is want,
        f"{what} ({type(error).__module__.split('.')[0]}.{type(error).__name__}): expected {want}, got {got}",
    )


# -- 05.1 is_retryable -------------------------------------------------------------------------------------------------


@task_check("05.1", "retries overloads, rate limits and server errors before the stream")
def retries_pre_stream(env: Env) -> None:
    for fault, what in (
        ("overloaded", "a 529 overload"),
        ("rate_limit", "a 429 rate limit"),
        ("api_error", "a 500 server error"),
    ):
        expect_verdict(env, error_from(env, fault), True, what)


@task_check("05.1", "retries failures in the stream: an error event, a dropped connection, a stall")
def retries_mid_stream(env: Env) -> None:
    expect_verdict(env, error_from(env, "error_midstream"), True, "an overloaded_error event after the 200")
    expect_verdict(env, error_from(env, "disconnect_midstream"), True, "a connection dropped mid-stream")
    expect_verdict(env, error_from(env, "stall_midstream", read_timeout=0.3), True, "a stall past the read timeout")


@task_check("05.1", "does not retry what another attempt cannot fix")
def refuses_hopeless(env: Env) -> None:
    expect_verdict(env, error_from(env, model="claude-sonnet-4-5-20250514"), False, "an unknown model (404)")
    expect_verdict(
        env,
        error_from(env, messages=[{"role": "user", "content": ""}]),
        False,
        "an invalid request: an empty message (400)",
    )


# -- 05.2 stream_with_retries ------------------------------------------------------------------------------------------


def full_text(env: Env, prompt: str = ABOUT, max_tokens: int = 200) -> str:
    message = env.client().messages.create(**env.request(prompt, max_tokens))
    return "".join(b.text for b in message.content if b.type == "text")


def expect_text(got: Any, want: str, partials: Any, what: str) -> None:
    """`got` is `want`; when it is not, say how it differs (two long texts cut short look alike)."""
    if got == want:
        return
    expect(isinstance(got, str), f"{what} must be a string, got {short(got)}")
    kept = [p for p in partials if isinstance(p, str) and p] if isinstance(partials, list) else []
    if got.endswith(want) and any(got[: len(got) - len(want)].endswith(p) for p in kept):
        expect(
            False,
            f"{what} starts with the failed attempt's partial text ({len(got) - len(want)} extra "
            f"characters before the new reply): start each attempt with an empty text, and keep what a "
            f"failed attempt showed only in 'partials'",
        )
    at = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), min(len(got), len(want)))
    expect(
        False,
        f"{what}: expected {len(want)} characters, got {len(got)}; they differ from character {at}: "
        f"expected {short(want[at : at + 40])}, got {short(got[at : at + 40])}",
    )


def retried(
    env: Env,
    *,
    prompt: str = ABOUT,
    max_tokens: int = 200,
    max_attempts: int = 3,
    delay: float = 0.01,
    model: str | None = None,
) -> dict[str, Any]:
    got = env.call(env.learner(), env.client(), model or env.model, prompt, max_tokens, max_attempts, delay)
    expect(isinstance(got, dict), f"stream_with_retries must return a dict, got {short(got)}")
    for key in ("status", "text", "partials", "attempts"):
        expect(key in got, f"the result has no {key!r} key (it has {short(sorted(got))})")
    expect(isinstance(got["partials"], list), f"'partials' must be a list of texts, got {short(got['partials'])}")
    return got


@task_check("05.2", "a stream that does not fail: complete after one attempt")
def no_failure(env: Env) -> None:
    got = retried(env)
    expect_equal((got["status"], got["attempts"], got["partials"]), ("complete", 1, []), "(status, attempts, partials)")
    expect_text(got["text"], full_text(env), got["partials"], "the text")


@task_check("05.2", "restarts a dropped stream from scratch and keeps its partial text")
def restarts_after_drop(env: Env) -> None:
    env.sim.inject("disconnect_midstream", after=10)
    got = retried(env)
    requests = env.sim.stats()["requests"]
    want = full_text(env)
    expect_equal((got["status"], got["attempts"]), ("complete", 2), "(status, attempts)")
    expect_text(got["text"], want, got["partials"], "the text (the second attempt's whole reply)")
    expect(
        len(got["partials"]) == 1
        and isinstance(got["partials"][0], str)
        and got["partials"][0]
        and want.startswith(got["partials"][0])
        and got["partials"][0] != want,
        f"'partials' should hold the text the failed attempt had shown, got {short(got['partials'])}",
    )
    expect_equal(requests, 2, "the number of requests sent")


@task_check("05.2", "gives up after max_attempts, keeping every partial text")
def gives_up(env: Env) -> None:
    env.sim.inject("error_midstream", count=3, after=5)
    got = retried(env, max_attempts=3)
    expect_equal((got["status"], got["attempts"], got["text"]), ("failed", 3, ""), "(status, attempts, text)")
    want = full_text(env)
    parts = got["partials"]
    grows = (
        len(parts) > 1
        and all(isinstance(p, str) for p in parts)
        and any(
            parts[i].startswith(parts[i - 1]) and len(parts[i]) > len(parts[i - 1]) > 0 for i in range(1, len(parts))
        )
    )
    expect(
        not grows,
        "each failed attempt's partial text starts with the previous attempt's: start each attempt "
        "with an empty text, so that 'partials' holds what each attempt showed on its own",
    )
    expect(
        len(parts) == 3 and all(p and want.startswith(p) for p in parts),
        f"'partials' should hold the three failed attempts' texts, got {short(got['partials'])}",
    )


# -- 05.3 stream_with_deadline -----------------------------------------------------------------------------------------


def deadline_run(env: Env, prompt: str, max_tokens: int, seconds: float) -> tuple[str, bool, float]:
    start = time.perf_counter()
    got = env.call(env.learner(), env.client(), env.model, prompt, max_tokens, seconds)
    elapsed = time.perf_counter() - start
    expect(
        isinstance(got, tuple) and len(got) == 2 and isinstance(got[0], str) and isinstance(got[1], bool),
        f"stream_with_deadline must return (text, finished), got {short(got)}",
    )
    return got[0], got[1], elapsed


@task_check("05.3", "the whole reply when it arrives in time")
def in_time(env: Env) -> None:
    text, finished, _ = deadline_run(env, ABOUT, 200, 10.0)
    expect_equal((text, finished), (full_text(env), True), "(text, finished)")


@task_check("05.3", "stops at the deadline, keeps what arrived, and closes the stream", timeout=20)
def at_deadline(env: Env) -> None:
    env.sim.speed = 2
    text, finished, elapsed = deadline_run(env, LONG, 400, 0.8)
    env.sim.wait_idle(2)
    env.sim.speed = 0
    want = full_text(env, LONG, 400)
    expect(not finished, "finished should be False when the deadline cut the reply short")
    expect(elapsed < 0.8 + 0.4, f"stream_with_deadline returned after {elapsed:.2f} s for a 0.8 s deadline")
    expect(
        text and want.startswith(text) and text != want,
        f"the text should be the part of the reply that arrived in time, got {short(text)}",
    )
    stats = env.sim.stats()
    expect(
        stats["streams_abandoned"] == 1 and stats["streams_completed"] == 0,
        "the stream kept running on the server after the deadline: leave the `with` block to close it",
    )
