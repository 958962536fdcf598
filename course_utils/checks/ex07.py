"""Exercise 07, a streaming agent: the loop with a step limit, tool input shown safely while it streams, tool calls run
concurrently with time limits, and a history that keeps thinking blocks unchanged."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from typing import TYPE_CHECKING, Any

from .base import CheckFailed, LearnerError, Task, expect, expect_equal, short, task_check
from .env import Env, as_messages

if TYPE_CHECKING:
    from anthropic.types import ThinkingConfigEnabledParam, ToolChoiceParam, ToolParam

_AGENT_HELPERS = ("course_utils.agent", "course_utils.agent_widget")

TASKS = (
    Task("07.1", "run_loop", "The agent loop, with a step limit", forbid=_AGENT_HELPERS),
    Task("07.2", "live_input", "Tool input, shown safely while it streams", forbid=_AGENT_HELPERS),
    Task("07.3", "run_calls", "Tool calls run concurrently, with time limits", forbid=_AGENT_HELPERS),
    Task("07.4", "continue_with_results", "A history that keeps thinking", forbid=_AGENT_HELPERS),
)

BUDGET: ThinkingConfigEnabledParam = {"type": "enabled", "budget_tokens": 1024}


def _schema(**params: str) -> dict[str, Any]:
    return {"type": "object", "properties": {p: {"type": t} for p, t in params.items()}, "required": list(params)}


CALCULATOR: ToolParam = {
    "name": "calculator",
    "description": "Evaluate an arithmetic expression, like 17 * 23.",
    "input_schema": _schema(expression="string"),
}
POPULATION: ToolParam = {
    "name": "lookup_population",
    "description": "Look up a city's population in a small table.",
    "input_schema": _schema(city="string"),
}
WEATHER: ToolParam = {
    "name": "get_weather",
    "description": "The current weather in a city (a slow service).",
    "input_schema": _schema(city="string"),
}
TOOLS = [CALCULATOR, POPULATION, WEATHER]
TABLE = {"Paris": "2,102,650", "Tokyo": "14,094,034", "Lagos": "15,388,000", "Oslo": "717,710"}


def _calculate(expression: str) -> str:
    """The checks' calculator: only the expressions the checks ask about."""
    known = {"17 * 23": "391", "12 * 7": "84", "1234 * 5678": "7006652"}
    if expression not in known:
        raise ValueError(f"cannot evaluate {expression!r}")
    return known[expression]


def functions(calls: list[str] | None = None) -> dict[str, Any]:
    """The lesson's tools as plain functions; each call is recorded in `calls`."""
    seen = calls if calls is not None else []

    def calculator(expression: str) -> str:
        seen.append(f"calculator({expression})")
        return _calculate(expression)

    def lookup_population(city: str) -> str:
        seen.append(f"lookup_population({city})")
        return TABLE[city]

    def get_weather(city: str) -> str:
        seen.append(f"get_weather({city})")
        return "18 °C and sunny"

    return {"calculator": calculator, "lookup_population": lookup_population, "get_weather": get_weather}


def field(block: Any, key: str) -> Any:
    """A block's field, whether the block is a dict or an SDK object."""
    return block.get(key) if isinstance(block, dict) else getattr(block, key, None)


def blocks_of(message: Any) -> list[Any]:
    content = field(message, "content")
    return [] if isinstance(content, str) else list(content or [])


def text_in(message: Any) -> str:
    content = field(message, "content")
    if isinstance(content, str):
        return content
    return "".join(field(b, "text") or "" for b in content or [] if field(b, "type") == "text")


# -- 07.1 run_loop -----------------------------------------------------------------------------------------------------


def run_loop(
    env: Env,
    prompt: str,
    max_steps: int = 5,
    funcs: dict[str, Any] | None = None,
    tools: list[dict[str, Any]] | None = None,
) -> tuple[list[Any], str]:
    """Call the learner's run_loop and check the shape of what it returns."""
    try:
        got = env.call(env.learner(), env.client(), env.model, prompt, tools or TOOLS, funcs or functions(), max_steps)
    except LearnerError as exc:
        if "BadRequestError" in str(exc):  # the loop built a request the API refuses: say which rule it broke
            raise CheckFailed(
                f"{exc}: the API refused a request your loop built. Append each assistant message "
                "with every block (message.content, tool_use blocks included), then ONE user turn "
                "with a tool_result for each call"
            ) from None
        raise
    expect(
        isinstance(got, tuple) and len(got) == 2,
        f"run_loop must return a pair (messages, stopped_by), got {short(got)}",
    )
    messages, stopped_by = got
    expect(isinstance(messages, list), f"the messages must be a list, got {short(messages)}")
    return messages, stopped_by


def roles(messages: list[Any]) -> list[Any]:
    return [field(m, "role") for m in messages]


def results_of(message: Any) -> list[Any]:
    return [b for b in blocks_of(message) if field(b, "type") == "tool_result"]


@task_check("07.1", "a calculation: one tool call, its result sent back, then the answer", timeout=20)
def loop_answers(env: Env) -> None:
    calls: list[str] = []
    messages, stopped_by = run_loop(env, "What is 17 * 23?", funcs=functions(calls))
    expect(
        calls == ["calculator(17 * 23)"],
        f"the tools your loop ran: {calls} (expected one calculator call on "
        "'17 * 23', run once the message that asked for it was complete)",
    )
    expect_equal(roles(messages), ["user", "assistant", "user", "assistant"], "the roles of the messages")
    expect_equal(stopped_by, "end_turn", "stopped_by")
    call = next((b for b in blocks_of(messages[1]) if field(b, "type") == "tool_use"), None)
    expect(
        call is not None,
        "the first assistant message has no tool_use block: append the whole message (every block), not only its text",
    )
    results = results_of(messages[2])
    expect(
        len(results) == 1 and field(results[0], "tool_use_id") == field(call, "id"),
        f"the user turn after the tool call should hold one tool_result with tool_use_id {field(call, 'id')!r}, "
        f"got {short(field(messages[2], 'content'), 160)}",
    )
    expect(
        "391" in str(field(results[0], "content")),
        f"the tool_result's content should be the tool's output ('391'), got {short(field(results[0], 'content'))}",
    )
    expect("391" in text_in(messages[3]), f"the final answer should use the result, got {short(text_in(messages[3]))}")
    expect_equal(len(env.sent), 2, "the number of requests your loop sent")


@task_check("07.1", "the step limit: stops after max_steps requests and says so", timeout=20)
def loop_step_limit(env: Env) -> None:
    messages, stopped_by = run_loop(env, "What is 17 * 23?", max_steps=1)
    expect(
        len(env.sent) == 1,
        f"with max_steps=1 your loop sent {len(env.sent)} requests: count each model call "
        "as a step and stop at the limit",
    )
    expect_equal(stopped_by, "step_limit", "stopped_by when the limit is reached before the model has finished")
    expect(roles(messages)[:2] == ["user", "assistant"], f"the messages' roles: {roles(messages)}")


@task_check("07.1", "a tool that raises becomes a tool_result with is_error, and the loop goes on", timeout=20)
def loop_tool_error(env: Env) -> None:
    def broken(expression: str) -> str:
        raise ZeroDivisionError("division by zero")

    try:
        messages, stopped_by = run_loop(env, "What is 17 * 23?", funcs={**functions(), "calculator": broken})
    except LearnerError as exc:
        raise CheckFailed(
            f"{exc}: catch a tool's exception and send it back as a tool_result with is_error: true, "
            "so that the model can answer"
        ) from None
    expect(len(messages) >= 3, f"the loop stopped after {len(messages)} message(s)")
    results = results_of(messages[2])
    expect(
        len(results) == 1 and field(results[0], "is_error") is True,
        f"the failed call's tool_result should have is_error: true, got {short(results[0] if results else None)}",
    )
    expect(
        "ZeroDivisionError" in str(field(results[0], "content")) or "division" in str(field(results[0], "content")),
        f"say what went wrong in the result's content, got {short(field(results[0], 'content'))}",
    )
    expect_equal(stopped_by, "end_turn", "stopped_by after the model answered the error")


# -- 07.2 live_input ---------------------------------------------------------------------------------------------------


def fragments_for(
    env: Env, prompt: str, tools: list[ToolParam] | None = None, choice: ToolChoiceParam | None = None
) -> list[str]:
    """The input_json_delta fragments of the first tool call the simulator streams for `prompt`."""
    client = env.client()
    fragments: list[str] = []
    with client.messages.stream(
        model=env.model,
        max_tokens=500,
        tools=tools or TOOLS,
        tool_choice=choice or {"type": "any"},
        messages=[{"role": "user", "content": prompt}],
    ) as stream:
        for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                fragments.append(event.delta.partial_json)
            if event.type == "content_block_stop" and fragments:
                break
    return fragments


def expected_views(fragments: list[str]) -> list[Any]:
    import jiter

    views, buffer = [], ""
    for fragment in fragments:
        buffer += fragment
        views.append(jiter.from_json(buffer.encode(), partial_mode="trailing-strings") if buffer.strip() else {})
    return views


def expect_views(env: Env, fragments: list[str], what: str) -> None:
    given = list(fragments)
    try:
        got = env.call(env.learner(), given)
    except LearnerError as exc:
        raise CheckFailed(
            f"{exc}: the fragments are cut anywhere, inside keys and strings; parse them with a "
            "partial-JSON parser (jiter.from_json(..., partial_mode='trailing-strings')) instead of "
            "closing the braces by hand"
        ) from None
    expect(given == fragments, "live_input changed the list of fragments it was given")
    expect(
        isinstance(got, list) and len(got) == len(fragments),
        f"live_input must return one view per fragment ({len(fragments)}), got {short(got)}",
    )
    want = expected_views(fragments)
    for i, (mine, theirs) in enumerate(zip(got, want, strict=True)):
        if mine != theirs:
            joined = "".join(fragments[: i + 1])
            hint = (
                " (a half-written string must show what has arrived so far: partial_mode='trailing-strings', not True)"
                if isinstance(theirs, dict) and len(json.dumps(theirs)) > len(json.dumps(mine))
                else ""
            )
            raise CheckFailed(f"{what}: after {joined!r} the view should be {short(theirs)}, got {short(mine)}{hint}")


@task_check("07.2", "a view after every fragment, a half-written string included")
def views_follow_fragments(env: Env) -> None:
    expect_views(env, fragments_for(env, "What is 1234 * 5678?"), "a calculator's input")


@task_check("07.2", "the empty first fragment gives an empty view")
def empty_first(env: Env) -> None:
    fragments = fragments_for(env, "What is the population of Tokyo?")
    expect(fragments[0] == "", "the simulator's first fragment is empty")
    expect_views(env, fragments, "a lookup's input")


# -- 07.3 run_calls ----------------------------------------------------------------------------------------------------


_STILL_WAITING = object()


def call(i: int, name: str, **args: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": f"toolu_check{i}", "name": name, "input": args}


def run_calls(
    env: Env, calls: list[dict[str, Any]], funcs: dict[str, Any], timeout: float = 2.0
) -> tuple[list[Any], float]:
    """Await the learner's run_calls; returns its results and the wall time."""
    func = env.learner()
    expect(asyncio.iscoroutinefunction(func), f"`{func.__name__}` must be an `async def` function")

    async def scenario() -> tuple[Any, float]:
        start = time.perf_counter()
        task = asyncio.ensure_future(func(copy.deepcopy(calls), funcs, timeout))
        done, _ = await asyncio.wait({task}, timeout=timeout + 3)
        if not done:  # still waiting on a call that never answers
            task.cancel()
            return _STILL_WAITING, time.perf_counter() - start
        return task.result(), time.perf_counter() - start

    got, wall = env.run(f"{func.__name__}(...)", scenario)
    expect(
        got is not _STILL_WAITING,
        f"run_calls was still waiting {wall:.1f} s later, with timeout={timeout:g}: "
        "limit each call with asyncio.wait_for(..., timeout)",
    )
    expect(
        isinstance(got, list) and len(got) == len(calls),
        f"run_calls must return one tool_result per call ({len(calls)}), got {short(got)}",
    )
    return got, wall


def sleeper(seconds: float, answer: str) -> Any:
    async def slow(**_: Any) -> str:
        await asyncio.sleep(seconds)
        return answer

    return slow


def expect_results(got: list[Any], calls: list[dict[str, Any]]) -> None:
    for block in got:
        expect(
            isinstance(block, dict) and block.get("type") == "tool_result",
            f"each result must be a tool_result block (a dict with type 'tool_result'), got {short(block)}",
        )
    expect(
        [b["tool_use_id"] for b in got] == [c["id"] for c in calls],
        f"the results' tool_use_ids are {[b['tool_use_id'] for b in got]}, the calls' ids "
        f"{[c['id'] for c in calls]}: one result per call, in the calls' order",
    )


@task_check("07.3", "two slow calls run at the same time; results in the calls' order", timeout=20)
def concurrent_calls(env: Env) -> None:
    calls = [call(1, "get_weather", city="Paris"), call(2, "get_weather", city="Tokyo")]
    got, wall = run_calls(env, calls, {"get_weather": sleeper(0.5, "18 °C and sunny")})
    expect_results(got, calls)
    expect(
        wall < 0.9,
        f"two 0.5 s calls took {wall:.2f} s: run them concurrently (asyncio.gather), not one after the other",
    )
    expect([b["content"] for b in got] == ["18 °C and sunny"] * 2, f"the results' content: {short(got)}")


@task_check("07.3", "a tool that raises gives is_error: true; the other calls still run", timeout=20)
def raising_call(env: Env) -> None:
    def broken(**_: Any) -> str:
        raise ValueError("no such city")

    calls = [call(1, "lookup_population", city="Atlantis"), call(2, "calculator", expression="17 * 23")]
    try:
        got, _ = run_calls(env, calls, {"lookup_population": broken, "calculator": functions()["calculator"]})
    except LearnerError as exc:
        raise CheckFailed(f"{exc}: a failing tool must become a tool_result with is_error: true") from None
    expect_results(got, calls)
    expect(
        got[0].get("is_error") is True and "no such city" in str(got[0].get("content")),
        f"the failed call's result should have is_error: true and say why, got {short(got[0])}",
    )
    expect(
        not got[1].get("is_error") and got[1].get("content") == "391",
        f"the other call should succeed with '391', got {short(got[1])}",
    )


# -- 07.4 continue_with_results ----------------------------------------------------------------------------------------


def thinking_step(env: Env, prompt: str = "What is 17 * 23?") -> tuple[list[dict[str, Any]], Any, list[dict[str, Any]]]:
    """A history, the thinking assistant message that asked for tools, and the results for its calls."""
    client = env.client()
    history = [{"role": "user", "content": prompt}]
    message = client.messages.create(
        model=env.model, max_tokens=2048, thinking=BUDGET, tools=TOOLS, messages=as_messages(history)
    )
    funcs = functions()
    results = [
        {"type": "tool_result", "tool_use_id": b.id, "content": funcs[b.name](**b.input)}
        for b in message.content
        if b.type == "tool_use"
    ]
    return history, message, results


def send_next(env: Env, history: list[dict[str, Any]], message: Any, results: list[dict[str, Any]]) -> Any:
    """The learner's next request, sent with thinking on; a 400 becomes a failure that says why."""
    import anthropic

    before = copy.deepcopy(history)
    got = env.call(env.learner(), history, message, copy.deepcopy(results))
    expect(history == before, "continue_with_results changed the history it was given: return a new list")
    expect(isinstance(got, list), f"continue_with_results must return the new list of messages, got {short(got)}")
    expect(
        len(got) == len(history) + 2,
        f"expected the history plus two messages (the assistant turn and one user "
        f"turn with every result), got {len(got)} messages for {len(history)}",
    )
    try:
        return env.client().messages.create(
            model=env.model, max_tokens=2048, thinking=BUDGET, tools=TOOLS, messages=got
        )
    except anthropic.BadRequestError as exc:
        text = exc.body.get("error", {}).get("message", "") if isinstance(exc.body, dict) else str(exc)
        hint = ""
        if "Expected `thinking`" in text:
            hint = ": keep the thinking block, first, in the assistant turn"
        elif "signature" in text.lower():
            hint = ": send the thinking block back exactly as it came (its signature covers its text)"
        raise CheckFailed(f"the API refused your messages (400: {short(text, 160)}){hint}") from None


@task_check("07.4", "the next request is accepted with thinking on, and the answer uses the result", timeout=20)
def keeps_thinking(env: Env) -> None:
    history, message, results = thinking_step(env)
    answer = send_next(env, history, message, results)
    expect("391" in text_in(answer), f"the answer should use the tool's result, got {short(text_in(answer))}")


@task_check("07.4", "the assistant turn holds every block of the message, in order", timeout=20)
def every_block(env: Env) -> None:
    history, message, results = thinking_step(env)
    got = env.call(env.learner(), history, message, copy.deepcopy(results))
    expect(isinstance(got, list) and len(got) >= 2, f"expected a list of messages, got {short(got)}")
    turn = got[-2]
    expect(
        field(turn, "role") == "assistant", f"the second-to-last message should be the assistant's, got {short(turn)}"
    )
    types = [field(b, "type") for b in blocks_of(turn)]
    expect_equal(types, [b.type for b in message.content], "the assistant turn's block types")
    expect(
        field(blocks_of(turn)[0], "signature") == message.content[0].signature,
        "the thinking block's signature was changed: send it back as it came",
    )
    expect(
        field(got[-1], "role") == "user" and len(results_of(got[-1])) == len(results),
        "the last message should be one user turn with every tool_result",
    )
