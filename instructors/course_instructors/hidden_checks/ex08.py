"""Exercise 08, hidden checks: the quota cut in-band, other refusals and other fields, no header without a token;
idle time that banks nothing, waits rounded up, a limit that does not divide 60, a long random run; the history's
bound, bodies refused for other reasons, conversations kept apart; resumes that repeat events, connections that end
early or fail before the first event, and giving up."""

from __future__ import annotations

import copy
import random

from course_utils.checks.base import CheckFailed, LearnerError, expect, expect_equal, short, task_check
from course_utils.checks.env import Env
from course_utils.checks.ex08 import (
    ANSWER,
    HELLO,
    SYSTEM,
    TOKENS,
    WORDS,
    Flaky,
    answer_events,
    answer_of,
    asked,
    decide,
    deployment,
    direct,
    expect_plain,
    expect_refusal,
    expect_sequence,
    expect_text,
    expected_decision,
    follow,
    refused,
    turn,
)

# -- 08.1 ask ----------------------------------------------------------------------------------------------------------


@task_check(
    "08.1",
    "the day's quota cuts an answer in-band: AnswerCut with the text that came",
    visibility="after_published",
    timeout=20,
)
def quota_cut(env: Env) -> None:
    long_ask = {"messages": [{"role": "user", "content": "Write 500 words about owls"}], "max_tokens": 200}
    with deployment(env, tokens=TOKENS, tokens_per_day=12) as (url, _):
        status, events = direct(url, long_ask, TOKENS[1])  # the other client: its own quota
        expect(status == 200 and events[-1][0] == "error", "the course's app did not cut the check's own answer")
        got = asked(env, url, long_ask, TOKENS[0])
    cut = env.learner("AnswerCut")
    expect(
        isinstance(got, cut),
        f"a 200 whose stream ends with an `error` event should raise AnswerCut, got "
        f"{short(got) if not isinstance(got, BaseException) else type(got).__name__}"
        + (" (the text alone hides that the answer was cut)" if isinstance(got, str) else ""),
    )
    data = events[-1][1]
    expect_equal(
        (getattr(got, "text", None), getattr(got, "type", None), getattr(got, "message", None)),
        (answer_of(events), data["type"], data["message"]),
        "the AnswerCut's (text, type, message)",
    )


@task_check(
    "08.1",
    "a 422 on another field, and a status with no class of its own: ChatRefused",
    visibility="after_published",
    timeout=20,
)
def other_refusals(env: Env) -> None:
    with deployment(env, tokens=TOKENS) as (url, _):
        bad = asked(env, url, {**HELLO, "max_tokens": 0}, TOKENS[0])
        env.sim.inject("overloaded")  # before the stream: the app answers 503 (retries are off)
        busy = asked(env, url, HELLO, TOKENS[0])
    error = expect_refusal(
        env, bad, "Invalid", 422, "invalid_request_error", "max_tokens: Input should be greater than or equal to 1"
    )
    expect_equal(getattr(error, "field", None), "max_tokens", "the Invalid's field for a max_tokens of 0")
    base = env.learner("ChatRefused")
    expect(
        type(busy) is base,
        f"a 503 should raise ChatRefused itself (no subclass is for it), got "
        f"{type(busy).__name__ if isinstance(busy, BaseException) else short(busy)}"
        + (": only a 429 is RateLimited" if type(busy).__name__ == "RateLimited" else ""),
    )
    expect_equal((busy.status, busy.type), (503, "overloaded_error"), "the ChatRefused's (status, type)")


@task_check(
    "08.1",
    "no token: no Authorization header at all; a base URL without its final slash",
    visibility="after_published",
    timeout=20,
)
def no_token_no_header(env: Env) -> None:
    with deployment(env, requests_per_minute=5) as (url, seen):
        status, events = direct(url, HELLO)
        got = asked(env, url.rstrip("/"), HELLO, None)
    base = url.rstrip("/")
    if isinstance(got, BaseException):
        raise CheckFailed(
            f"with the base URL {base!r} (no final slash), ask raised {type(got).__name__}: "
            f"{short(str(got), 120)}: join the base URL and 'api/chat' with exactly one '/'"
        )
    chats = seen.chats()
    expect(
        len(chats) == 2,
        f"ask did not reach {base}/api/chat (the server saw "
        f"{short([n['path'] for n in seen.seen[1:]])}): join the base URL and 'api/chat' with "
        "exactly one '/'",
    )
    header = chats[-1]["headers"].get("authorization")
    expect(header is None, f"without a token ask sent `Authorization: {short(header)}`: send no such header")
    expect_equal(got, answer_of(events), "the answer's text from an open deployment")


# -- 08.2 rate_decision ------------------------------------------------------------------------------------------------


@task_check("08.2", "idle time banks no more than the limit", visibility="after_published")
def idle_banks_nothing(env: Env) -> None:
    tat = expect_sequence(env, 4, [0.0] * 4)
    expect_sequence(env, 4, [3600.0] * 5, tat, "after an hour idle: ")
    expect_sequence(env, 5, [1000.0] * 6, 1.0, "a tat long past: ")


@task_check("08.2", "the wait is whole seconds rounded up, at least 1", visibility="after_published")
def waits_round_up(env: Env) -> None:
    for tat, now, limit in [(60.2, 0.0, 1), (70.0, 0.5, 2), (119.5, 10.0, 1), (90.0, 0.01, 2), (60.0, 0.0, 60)]:
        want = expected_decision(tat, now, limit)
        got = decide(env, tat, now, limit)
        expect(
            got[1] == want[1],
            f"limit {limit}/min, tat={tat:g}, now={now:g}: the wait should be {want[1]} s "
            f"(how long until it would pass, {tat + 60 / limit - now - 60:g} s, rounded up, "
            f"at least 1), got {got[1]}",
        )


@task_check(
    "08.2", "a limit that does not divide 60: a request exactly one interval later passes", visibility="after_published"
)
def floating_point(env: Env) -> None:
    for limit in (7, 9, 11, 13):
        interval = 60 / limit
        tat = expect_sequence(env, limit, [0.0] * limit)
        expect_sequence(
            env,
            limit,
            [interval * k for k in range(1, 6)],
            tat,
            "exactly one interval after another (allow 1e-9 s for floating point): ",
        )


@task_check("08.2", "the same decisions as the course's limiter on a long random run", visibility="after_published")
def random_run(env: Env) -> None:
    rng = random.Random(808)
    for limit in (1, 2, 5, 30, 120):
        now, times = 1000.0, []
        for _ in range(60):
            now += rng.choice([0.0, 0.0, rng.uniform(0, 2), rng.uniform(0, 60 / limit), rng.uniform(0, 90)])
            times.append(round(now, 3))
        expect_sequence(env, limit, times, 0.0, "a random run: ")


# -- 08.3 held_turn ----------------------------------------------------------------------------------------------------


def expect_bounded(store: dict, key: str, want: list, max_turns: int) -> None:
    expect_plain(store.get(key), f"store[{key!r}]")
    got = store[key]
    if got != want:
        hint = (
            " (it must start with a user turn: drop a leading assistant turn)"
            if got and got[0]["role"] == "assistant"
            else ""
        )
        raise CheckFailed(
            f"with max_turns={max_turns}, the stored turns should be "
            f"{short([t['content'] for t in want], 160)}, got {short([t['content'] for t in got], 160)}"
            f"{hint}"
        )


@task_check(
    "08.3",
    "the history keeps at most max_turns turns, starting with a user turn",
    visibility="after_published",
    timeout=20,
)
def bounded_history(env: Env) -> None:
    from course_utils.chat_app.state import bounded

    store: dict = {}
    try:
        answers = [
            turn(env, store, {"conversation_id": "check-many", "message": m}, max_turns=3)
            for m in ("My name is Ada.", "Tell me about owls.", "What's my name?")
        ]
    except LearnerError as exc:
        if "BadRequestError" in str(exc):
            raise CheckFailed(
                f"{exc}: with max_turns=3 the stored turns must still start with a user turn (cut "
                "the oldest assistant turn too), or the next request is refused"
            ) from None
        raise
    everything = []
    for message, answer in zip(("My name is Ada.", "Tell me about owls.", "What's my name?"), answers, strict=True):
        everything += [{"role": "user", "content": message}, {"role": "assistant", "content": answer}]
    expect_bounded(store, "check-many", bounded(everything, 3), 3)
    expect_equal(
        env.sent[-1]["messages"][:-1],
        bounded(everything[:4], 3),
        "the third request's stored turns (at most max_turns, as stored)",
    )
    store = {"check-four": copy.deepcopy(everything[:4])}
    turn(env, store, {"conversation_id": "check-four", "message": "What's my name?"}, max_turns=4)
    expect_equal(len(store["check-four"]), 4, "the stored turns with max_turns=4 after three turns")
    expect_equal(store["check-four"][0], everything[2], "the oldest turn kept with max_turns=4")


@task_check(
    "08.3",
    "a blank message, no conversation_id, an unknown field: refused, nothing sent",
    visibility="after_published",
    timeout=20,
)
def other_bad_bodies(env: Env) -> None:
    store: dict = {}
    refused(env, store, {"conversation_id": "check-blank", "message": "   "}, "message")
    refused(env, store, {"conversation_id": "check-blank"}, "message")
    refused(env, store, {"message": "Hello"}, "conversation_id")
    refused(env, store, {"conversation_id": "", "message": "Hello"}, "conversation_id")
    refused(env, store, {"conversation_id": "check-blank", "message": "Hi", "model": "claude-opus-4-6"}, "model")
    refused(env, store, {"conversation_id": "check-blank", "message": ["Hello"]}, "message")


@task_check("08.3", "two conversations are kept apart", visibility="after_published", timeout=20)
def kept_apart(env: Env) -> None:
    store: dict = {}
    turn(env, store, {"conversation_id": "check-ada", "message": "My name is Ada."})
    answer = turn(env, store, {"conversation_id": "check-bob", "message": "What's my name?"})
    expect_equal(
        env.sent[-1]["messages"],
        [{"role": "user", "content": "What's my name?"}],
        "a new conversation's request (only its own turn)",
    )
    expect("Ada" not in answer, "the other conversation's name leaked into this one")
    expect_equal(sorted(store), ["check-ada", "check-bob"], "the conversations stored")
    expect_equal([len(store[k]) for k in ("check-ada", "check-bob")], [2, 2], "the turns of each conversation")


@task_check(
    "08.3",
    "a failed first turn leaves no conversation behind; the next one starts clean",
    visibility="after_published",
    timeout=20,
)
def failed_first_turn(env: Env) -> None:
    store: dict = {}
    env.sim.inject("error_midstream", after=3)
    try:
        env.call(
            env.learner(),
            env.client(),
            env.model,
            SYSTEM,
            store,
            {"conversation_id": "check-new", "message": "Tell me about owls."},
            40,
        )
    except LearnerError:
        pass
    else:
        raise CheckFailed("held_turn returned although its stream failed: let the error through")
    expect(not store.get("check-new"), f"the failed first turn left {short(store.get('check-new'), 120)} behind")
    turn(env, store, {"conversation_id": "check-new", "message": "My name is Ada."})
    expect_equal(
        env.sent[-1]["messages"],
        [{"role": "user", "content": "My name is Ada."}],
        "the request after a failed first turn",
    )


# -- 08.4 follow_answer ------------------------------------------------------------------------------------------------


@task_check("08.4", "a resume that sends again events you already have: none kept twice", visibility="after_published")
def repeats_skipped(env: Env) -> None:
    events = answer_events()
    source = Flaky(events, cuts={4, 9}, repeat=3)
    expect_text(follow(env, source), events, source)
    expect_equal(source.opened, [None, f"{ANSWER}:4", f"{ANSWER}:9"], "the calls of open_events")


@task_check(
    "08.4",
    "a connection that just ends early, another kind of drop, and one that fails before its first event",
    visibility="after_published",
)
def other_cuts(env: Env) -> None:
    import httpx

    events = answer_events()
    source = Flaky(events, clean={5})
    got = follow(env, source, if_it_raises="a connection that ends before `done` or `error` is cut: reconnect")
    expect(
        got != "".join(WORDS[:5]),
        "follow_answer returned the first five words: the connection ended before "
        "`done`, so the answer is not finished; reconnect",
    )
    expect_text(got, events, source)
    expect_equal(source.opened, [None, f"{ANSWER}:5"], "the calls of open_events after a connection that ended")
    source = Flaky(events, cuts={2, 6}, error=lambda text: httpx.ReadError(text))
    got = follow(
        env, source, if_it_raises="every httpx.TransportError is a dropped connection, not only RemoteProtocolError"
    )
    expect_text(got, events, source)
    source = Flaky(events, first_fails=True)
    expect_text(follow(env, source), events, source)
    expect_equal(source.opened, [None, None], "the calls of open_events when the first fails before any event")


@task_check(
    "08.4",
    "gives up after max_drops fruitless connections in a row, with the error; progress resets the count",
    visibility="after_published",
)
def gives_up(env: Env) -> None:
    import httpx

    events = answer_events()
    for max_drops in (2, 3):
        source = Flaky(events, cuts={3}, dead_after=3, repeat=1)
        try:
            got = env.call(env.learner(), source, max_drops)
        except LearnerError as exc:
            expect(
                isinstance(exc.error, httpx.TransportError),
                f"give up with the connection's error (an httpx.TransportError), got {type(exc.error).__name__}",
            )
        else:
            raise CheckFailed(
                f"follow_answer returned {short(got)} for an answer that never came back: let the error through"
            )
        expect_equal(
            source.opened,
            [None] + [f"{ANSWER}:3"] * max_drops,
            f"the calls of open_events with max_drops={max_drops} (the first connection brought events, "
            f"then {max_drops} in a row brought none)",
        )
    source = Flaky(events, cuts=set(range(1, len(events))))  # every connection brings one event, then drops
    try:
        got = follow(env, source, max_drops=1)
    except LearnerError as exc:
        raise CheckFailed(
            f"{exc}: each connection brought a new event, so the count of fruitless ones starts "
            "again; only connections in a row with nothing new count"
        ) from None
    expect_text(got, events, source)
