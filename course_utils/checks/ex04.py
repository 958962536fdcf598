"""Exercise 04, chat history: one complete assistant message per turn, trimming to a budget, a turn you can stop."""

from __future__ import annotations

import asyncio
import copy
from typing import TYPE_CHECKING, Any

from .base import LearnerError, Task, expect, expect_equal, short, task_check
from .env import Env, as_messages

if TYPE_CHECKING:
    from anthropic.types import ToolParam

_HISTORY_HELPERS = ("course_utils.history", "course_utils.chat_widget")

TASKS = (
    Task("04.1", "chat_turn", "A turn-complete history", forbid=_HISTORY_HELPERS),
    Task("04.2", "trim_history", "Trim the history to a token budget", forbid=_HISTORY_HELPERS),
    Task("04.3", "stoppable_turn", "A turn you can stop", forbid=_HISTORY_HELPERS),
)

WEATHER_TOOL: ToolParam = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def content_text(content: Any) -> str:
    """A message's text, whether its content is a string or a list of blocks (dicts or SDK objects)."""
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        kind = block.get("type") if isinstance(block, dict) else getattr(block, "type", None)
        if kind == "text":
            parts.append(block["text"] if isinstance(block, dict) else block.text)
    return "".join(parts)


def expect_turns(history: Any, texts: list[tuple[str, str]]) -> None:
    """The history holds exactly these (user text, assistant text) exchanges, one message each."""
    expect(isinstance(history, list), f"the history must stay a list, got {short(history)}")
    roles = [m.get("role") if isinstance(m, dict) else None for m in history]
    want_roles = ["user", "assistant"] * len(texts)
    expect(
        roles == want_roles,
        f"after {len(texts)} turn(s) the history's roles should be {want_roles}, got {roles}"
        " (one user message and ONE assistant message per turn)",
    )
    for i, (user, assistant) in enumerate(texts):
        expect_equal(content_text(history[2 * i]["content"]), user, f"the text of message {2 * i + 1} (user)")
        expect_equal(
            content_text(history[2 * i + 1]["content"]),
            assistant,
            f"the text of message {2 * i + 2} (assistant: the whole reply)",
        )


# -- 04.1 chat_turn ----------------------------------------------------------------------------------------------------


@task_check("04.1", "the next turn remembers what the user said")
def remembers(env: Env) -> None:
    history: list[dict[str, Any]] = []
    client = env.client()
    env.call(env.learner(), client, env.model, history, "Hi, my name is Ada.")
    reply = env.call(env.learner(), client, env.model, history, "What's my name?")
    expect(isinstance(reply, str), f"chat_turn must return the reply's text, got {short(reply)}")
    expect(
        "Ada" in reply,
        f'asked "What\'s my name?" after "Hi, my name is Ada.", the reply was {short(reply)}: '
        "send the whole history with every request",
    )


@task_check("04.1", "records the user turn and one whole assistant message per turn")
def one_message_per_turn(env: Env) -> None:
    history: list[dict[str, Any]] = []
    client = env.client()
    first = env.call(env.learner(), client, env.model, history, "Tell me about the ocean.")
    second = env.call(env.learner(), client, env.model, history, "Tell me about coffee.")
    expect_turns(history, [("Tell me about the ocean.", first), ("Tell me about coffee.", second)])
    want = client.messages.create(
        model=env.model, max_tokens=env.sent[-1]["max_tokens"], messages=env.sent[-1]["messages"]
    )
    expect_equal(second, content_text(want.content), "the returned text")


@task_check("04.1", "streams the reply")
def streams(env: Env) -> None:
    history: list[dict[str, Any]] = []
    env.call(env.learner(), env.client(), env.model, history, "Tell me about the ocean.")
    sent = [body for body in env.sent if "messages" in body and "max_tokens" in body]
    expect(sent, "chat_turn sent no request through the client it was given")
    expect(
        all(body.get("stream") is True for body in sent),
        'chat_turn waited for the whole reply (a request without "stream": true): stream it with '
        "`with client.messages.stream(...) as stream:` and take the message from `stream.get_final_message()`",
    )


def expect_failed_turn_untouched(env: Env, fault: str) -> None:
    """After one good turn, a turn broken by `fault` must raise and leave the history exactly as it was."""
    client = env.client()
    history: list[dict[str, Any]] = []
    env.call(env.learner(), client, env.model, history, "Hi, my name is Ada.")
    before = copy.deepcopy(history)
    env.sim.inject(fault, after=5)
    try:
        env.call(env.learner(), client, env.model, history, "Tell me about the ocean.")
    except LearnerError:  # the learner's code let the failure through, as it should
        pass
    else:
        expect(False, "chat_turn returned normally although the stream broke: let the error reach the caller")
    expect(
        history == before,
        f"after a failed turn the history should be unchanged ({len(before)} messages), "
        f"it has {len(history)}: record the turn only once the stream has ended",
    )


@task_check("04.1", "a turn that fails mid-stream leaves the history as it was")
def failed_turn(env: Env) -> None:
    expect_failed_turn_untouched(env, "disconnect_midstream")


# -- 04.2 trim_history -------------------------------------------------------------------------------------------------


def conversation(env: Env, prompts: list[str]) -> list[dict[str, Any]]:
    """A real conversation with the simulator, one exchange per prompt."""
    client = env.client()
    history: list[dict[str, Any]] = []
    for prompt in prompts:
        history.append({"role": "user", "content": prompt})
        reply = client.messages.create(model=env.model, max_tokens=80, messages=as_messages(history))
        history.append({"role": "assistant", "content": content_text(reply.content)})
    return history


def starts_exchange(message: dict[str, Any]) -> bool:
    """A user turn that is not a tool result: where a whole exchange begins."""
    content = message["content"]
    return message["role"] == "user" and not (
        isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)
    )


def count(env: Env, messages: list[dict[str, Any]]) -> int:
    if not messages:
        return 0
    return env.client().messages.count_tokens(model=env.model, messages=as_messages(messages)).input_tokens


def best_trim(env: Env, history: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """The longest tail starting an exchange that fits the budget."""
    for start in range(len(history)):
        if starts_exchange(history[start]) and count(env, history[start:]) <= budget:
            return history[start:]
    return []


def expect_trim(env: Env, history: list[dict[str, Any]], budget: int, what: str) -> None:
    original = copy.deepcopy(history)
    got = env.call(env.learner(), env.client(), env.model, history, budget)
    expect(history == original, "trim_history changed the history it was given: return a new list")
    expect(isinstance(got, list), f"trim_history must return a list of messages, got {short(got)}")
    want = best_trim(env, original, budget)
    expect(
        got == want,
        f"{what}: expected the last {len(want)} of {len(original)} messages, got {len(got)} "
        f"messages ({count(env, got) if isinstance(got, list) else '?'} tokens for a budget of "
        f"{budget}; whole exchanges only, each starting with a user turn)",
    )


PROMPTS = [
    "Hi, my name is Ada.",
    "Tell me about the ocean.",
    "Tell me about coffee.",
    "Tell me about volcanoes.",
    "What's my name?",
]


@task_check("04.2", "keeps the most recent whole exchanges that fit the budget", timeout=20)
def trims_to_budget(env: Env) -> None:
    history = conversation(env, PROMPTS)
    expect_trim(env, history, count(env, history[-6:]), "with a budget that fits the last three exchanges")
    expect_trim(env, history, count(env, history[-4:]) + 5, "with a budget that fits the last two exchanges and a bit")


@task_check("04.2", "keeps everything when it all fits", timeout=20)
def keeps_all(env: Env) -> None:
    history = conversation(env, PROMPTS[:3])
    expect_trim(env, history, count(env, history) + 100, "with a budget larger than the whole history")


# -- 04.3 stoppable_turn -----------------------------------------------------------------------------------------------


def run_turn(
    env: Env,
    history: list[dict[str, Any]],
    text: str,
    stop_after: int | None = None,
) -> tuple[Any, list[str], BaseException | None]:
    """Await the learner's stoppable_turn; with `stop_after`, cancel it once that many pieces arrived."""
    func = env.learner()
    expect(asyncio.iscoroutinefunction(func), f"`{func.__name__}` must be an `async def` function")
    pieces: list[str] = []

    async def scenario() -> tuple[Any, BaseException | None]:
        client = env.async_client()
        task = asyncio.ensure_future(func(client, env.model, history, text, pieces.append))
        if stop_after is None:
            return await task, None
        for _ in range(500):
            if len(pieces) >= stop_after or task.done():
                break
            await asyncio.sleep(0.01)
        task.cancel()
        try:
            return await task, None
        except asyncio.CancelledError as exc:  # what a stopped turn should raise
            for _ in range(100):  # let the server notice the closed connection
                if env.sim.stats()["streams_open"] == 0:
                    break
                await asyncio.sleep(0.02)
            return None, exc

    result, error = env.run(f"{func.__name__}(...)", scenario)
    return result, pieces, error


@task_check("04.3", "a turn that completes: text as it arrives, then one message", timeout=20)
def stoppable_completes(env: Env) -> None:
    history: list[dict[str, Any]] = []
    reply, pieces, _ = run_turn(env, history, "Tell me about the ocean.")
    expect(len(pieces) > 1, f"on_text was called {len(pieces)} time(s): call it with each piece as it arrives")
    expect_equal("".join(pieces), reply, "the pieces given to on_text, joined")
    expect_turns(history, [("Tell me about the ocean.", reply)])


@task_check("04.3", "a stopped turn leaves no trace and closes its stream", timeout=20)
def stoppable_stops(env: Env) -> None:
    env.sim.speed = 2
    history = [{"role": "user", "content": "Hi, my name is Ada."}, {"role": "assistant", "content": "Hello, Ada!"}]
    before = copy.deepcopy(history)
    result, pieces, error = run_turn(env, history, "Write 500 words about the ocean.", stop_after=3)
    expect(
        error is not None,
        f"the turn was cancelled but returned {short(result)}: let CancelledError through (never swallow it)",
    )
    expect(history == before, f"after a stopped turn the history should be unchanged, it has {len(history)} messages")
    stats = env.sim.stats()
    expect(
        stats["streams_abandoned"] == 1 and stats["streams_completed"] == 0,
        "the stopped stream kept running on the server: stream with `async with`, so cancelling closes it",
    )
