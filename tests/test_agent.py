"""The agent loop (course_utils.agent) against the simulator: tools chosen and answered, thinking kept, parallel calls
run concurrently, the step limit, every fault kind (nothing of a broken step is run, no stream left open)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anthropic
import httpx2
import pytest

from course_utils.agent import (
    AgentEvent,
    AgentFailed,
    Tool,
    block_param,
    partial_json,
    plot_timeline,
    run_agent,
    run_tools,
    thinking_for,
)
from course_utils.simulator import Simulator
from course_utils.simulator.faults import KINDS, MID_STREAM, PRE_STREAM

MODEL = "claude-haiku-4-5"
BUDGET = {"type": "enabled", "budget_tokens": 1024}
POPULATION = {"Paris": 2_102_650, "Tokyo": 14_094_034}


def make_tools(ran: list[str], weather_seconds: float = 0.3) -> list[Tool]:
    """The lesson's tools; `ran` records each call that was actually executed."""

    def calculate(expression: str) -> str:
        ran.append(f"calculator:{expression}")
        return str(eval(expression, {"__builtins__": {}}))  # the tests' own input only

    def lookup_population(city: str) -> str:
        ran.append(f"lookup_population:{city}")
        return f"{POPULATION[city]:,}"

    async def get_weather(city: str) -> str:
        ran.append(f"get_weather:{city}")
        await asyncio.sleep(weather_seconds)
        return "18 °C and sunny"

    return [
        Tool("calculator", "Evaluate an arithmetic expression, like 17 * 23.", {"expression": "string"}, calculate),
        Tool(
            "lookup_population", "Look up a city's population in a small table.", {"city": "string"}, lookup_population
        ),
        Tool(
            "get_weather", "The current weather in a city (a slow service).", {"city": "string"}, get_weather, timeout=2
        ),
    ]


def agent(sim: Simulator, prompt: str, tools: list[Tool], **options: Any) -> Any:
    """Run the loop on a fresh async client (no retries unless asked) and return the run."""

    async def go() -> Any:
        client = anthropic.AsyncAnthropic(
            base_url=sim.base_url,
            api_key="k",
            max_retries=options.pop("max_retries", 0),
            timeout=options.pop("timeout", 10),
        )
        return await run_agent(client, MODEL, prompt, tools, **options)

    return asyncio.run(go())


def test_a_calculation_is_sent_to_the_calculator_and_answered_from_its_result(fresh_sim: Simulator) -> None:
    ran: list[str] = []
    run = agent(fresh_sim, "What is 17 * 23?", make_tools(ran))
    assert ran == ["calculator:17 * 23"]
    assert run.stopped_by == "end_turn" and run.steps == 2 and run.done
    assert "391" in run.text
    assert [m["role"] for m in run.messages] == ["user", "assistant", "user", "assistant"]
    assert run.messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": run.tool_calls[0].id, "content": "391"}
    ]


def test_spoken_arithmetic_and_a_lookup_get_sensible_inputs(fresh_sim: Simulator) -> None:
    ran: list[str] = []
    agent(fresh_sim, "What is 12 times 7?", make_tools(ran))
    agent(fresh_sim, "What is the population of Tokyo?", make_tools(ran))
    assert ran == ["calculator:12 * 7", "lookup_population:Tokyo"]


def test_no_tool_for_a_plain_question(fresh_sim: Simulator) -> None:
    ran: list[str] = []
    run = agent(fresh_sim, "Tell me about the ocean.", make_tools(ran))
    assert ran == [] and run.steps == 1 and run.stopped_by == "end_turn" and "ocean" in run.text.lower()


def test_parallel_calls_run_concurrently_and_return_in_one_user_turn(fresh_sim: Simulator) -> None:
    ran: list[str] = []
    tools = make_tools(ran, weather_seconds=0.5)
    tools[1].func = _slow(tools[1].func, 0.5)
    started = time.perf_counter()
    run = agent(fresh_sim, "What's the weather in Paris and the population of Tokyo?", tools)
    elapsed = time.perf_counter() - started
    assert sorted(ran) == ["get_weather:Paris", "lookup_population:Tokyo"]
    assert elapsed < 0.95, f"two 0.5 s tools took {elapsed:.2f} s: not concurrent"
    results = run.messages[2]["content"]
    assert [r["type"] for r in results] == ["tool_result", "tool_result"]
    calls = [b for b in run.messages[1]["content"] if b["type"] == "tool_use"]
    assert [r["tool_use_id"] for r in results] == [c["id"] for c in calls]  # the calls' order
    assert "18 °C and sunny" in run.text and "14,094,034" in run.text


def _slow(func: Any, seconds: float) -> Any:
    def slow(**kwargs: Any) -> Any:
        time.sleep(seconds)  # a sync tool: the loop runs it in a thread
        return func(**kwargs)

    return slow


def test_thinking_blocks_go_back_unchanged_and_the_answer_follows(fresh_sim: Simulator) -> None:
    events: list[AgentEvent] = []
    run = agent(fresh_sim, "What is 17 * 23?", make_tools([]), thinking=BUDGET, on_event=events.append)
    assert run.stopped_by == "end_turn"
    first = run.messages[1]["content"]
    assert first[0]["type"] == "thinking" and first[0]["signature"] and first[0]["thinking"]
    kinds = [e.kind for e in events]
    assert kinds.index("thinking") < kinds.index("text") < kinds.index("tool_input") < kinds.index("tool_ready")
    assert kinds.index("tool_ready") < kinds.index("tool_start") < kinds.index("tool_done") < kinds.index("end")
    phases = {p.kind for p in run.phases}
    assert {"waiting", "thinking", "text", "tool_input", "tool_running"} <= phases


def test_dropping_the_thinking_block_is_a_400(client: anthropic.Anthropic) -> None:
    tools = [t.to_param() for t in make_tools([])]
    question = [{"role": "user", "content": "What is 17 * 23?"}]
    first = client.messages.create(model=MODEL, max_tokens=2048, thinking=BUDGET, tools=tools, messages=question)
    call = first.content[-1]
    results = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "391"}]}
    without = [block_param(b) for b in first.content if b.type != "thinking"]
    with pytest.raises(anthropic.BadRequestError, match="Expected `thinking` or `redacted_thinking`"):
        client.messages.create(
            model=MODEL,
            max_tokens=2048,
            thinking=BUDGET,
            tools=tools,
            messages=[*question, {"role": "assistant", "content": without}, results],
        )
    kept = [block_param(b) for b in first.content]
    answer = client.messages.create(
        model=MODEL,
        max_tokens=2048,
        thinking=BUDGET,
        tools=tools,
        messages=[*question, {"role": "assistant", "content": kept}, results],
    )
    assert "391" in answer.content[-1].text


def test_thinking_is_chosen_from_the_models_capabilities(client: anthropic.Anthropic) -> None:
    assert thinking_for(client, "claude-haiku-4-5") == {"type": "enabled", "budget_tokens": 1024}
    assert thinking_for(client, "claude-sonnet-4-6", display="omitted") == {"type": "adaptive", "display": "omitted"}


def test_the_step_limit_stops_the_loop_with_the_results_in_the_history(fresh_sim: Simulator) -> None:
    ran: list[str] = []
    run = agent(fresh_sim, "What is 17 * 23?", make_tools(ran), max_steps=1)
    assert run.stopped_by == "step_limit" and run.steps == 1 and not run.done
    assert run.messages[-1]["content"][0]["type"] == "tool_result"
    again = agent(fresh_sim, run.messages, make_tools(ran))  # the history can be continued
    assert again.stopped_by == "end_turn" and "391" in again.text


def test_a_tool_that_raises_and_one_that_hangs_become_error_results(fresh_sim: Simulator) -> None:
    def broken(expression: str) -> str:
        raise ZeroDivisionError("division by zero")

    async def hangs(city: str) -> str:
        await asyncio.sleep(3600)
        return "never"

    tools = make_tools([])
    tools[0].func = broken
    tools[2].func, tools[2].timeout = hangs, 0.2
    run = agent(fresh_sim, "What is 17 * 23?", tools)
    assert run.tool_calls[0].is_error and "ZeroDivisionError" in run.tool_calls[0].content
    assert run.messages[2]["content"][0]["is_error"] is True
    assert "failed" in run.text  # the model was told, and says so
    started = time.perf_counter()
    run = agent(fresh_sim, "What's the weather in Paris?", tools)
    assert time.perf_counter() - started < 2
    assert run.tool_calls[0].is_error and run.tool_calls[0].content == "timed out after 0.2 s"


def test_an_unknown_tool_is_an_error_result() -> None:
    records = asyncio.run(run_tools([{"id": "toolu_1", "name": "nope", "input": {}}], make_tools([])))
    assert records[0].is_error and "no tool called 'nope'" in records[0].content


def test_max_tokens_inside_a_tool_call_runs_nothing(fresh_sim: Simulator, client: anthropic.Anthropic) -> None:
    tools = make_tools([])
    full = client.messages.create(
        model=MODEL,
        max_tokens=500,
        tools=[t.to_param() for t in tools],
        messages=[{"role": "user", "content": "What is 17 * 23?"}],
    )
    ran: list[str] = []
    run = agent(fresh_sim, "What is 17 * 23?", make_tools(ran), max_tokens=full.usage.output_tokens - 3)
    assert run.stopped_by == "max_tokens" and ran == []
    assert [m["role"] for m in run.messages] == ["user"]  # the cut tool call stays out of the history
    assert run.last_message.content[-1].type == "tool_use"


@pytest.mark.parametrize("kind", KINDS)
def test_every_fault_kind_fails_the_step_runs_nothing_and_leaves_no_stream_open(
    fresh_sim: Simulator, kind: str
) -> None:
    ran: list[str] = []
    # After 14 tokens the first step is inside its tool call: the text is out, the JSON half sent.
    fresh_sim.inject(kind, after=14, stall_seconds=30)
    with pytest.raises(AgentFailed) as info:
        agent(fresh_sim, "What is 17 * 23?", make_tools(ran), timeout=httpx2.Timeout(10, read=0.5))
    failed = info.value
    assert ran == [], "a tool of a broken step was executed"
    assert failed.run.steps == 1 and [m["role"] for m in failed.run.messages] == ["user"]
    if kind in PRE_STREAM:
        assert isinstance(failed.error, anthropic.APIStatusError) and failed.partial is None
    else:
        assert kind in MID_STREAM
        assert failed.partial is not None and failed.partial.content[-1].type == "tool_use"
        assert failed.partial.content[-1].input == {}  # half a string: the snapshot has no value yet
    assert fresh_sim.wait_idle(5), f"a stream stayed open after {kind}"
    assert fresh_sim.stats()["streams_open"] == 0


def test_a_pre_stream_fault_is_retried_by_the_sdk_and_the_run_completes(fresh_sim: Simulator) -> None:
    fresh_sim.inject("overloaded", count=1)
    run = agent(fresh_sim, "What is 17 * 23?", make_tools([]), max_retries=2)
    assert run.stopped_by == "end_turn" and "391" in run.text


def test_partial_json_keeps_a_half_string_where_a_hand_written_parser_fails() -> None:
    import json

    half = '{"expression": "17 *'
    assert partial_json(half) == {"expression": "17 *"}
    assert partial_json("") == {}
    with pytest.raises(json.JSONDecodeError):
        json.loads(half + "}")


def test_the_timeline_has_one_row_per_step_and_per_tool(fresh_sim: Simulator) -> None:
    import matplotlib

    matplotlib.use("Agg")
    run = agent(fresh_sim, "What's the weather in Paris and the population of Tokyo?", make_tools([]), thinking=BUDGET)
    ax = plot_timeline(run)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["step 1: model", "step 1: get_weather", "step 1: lookup_population", "step 2: model"]


def test_the_widget_shows_thinking_text_and_a_tool_card_and_stop_closes_the_stream(fresh_sim: Simulator) -> None:
    from course_utils.agent_widget import AgentWidget

    ui = AgentWidget(
        anthropic.AsyncAnthropic(base_url=fresh_sim.base_url, api_key="k"), MODEL, make_tools([]), thinking=BUDGET
    )
    try:
        ui.prompt.value = "What is 17 * 23?"
        ui.run_button.click()
        assert ui.wait(10) and ui.last_run is not None and ui.last_run.stopped_by == "end_turn"
        shown = [child.value for child in ui.view.children]
        assert "thinking" in shown[0] and "color:#888" in shown[0]  # thinking first, dimmed
        assert any("🔧 calculator" in s and "done" in s and "391" in s for s in shown)
        assert "17 * 23 = 391" in shown[-2]
        fresh_sim.speed = 1  # real pacing, so there is something to stop
        ui.prompt.value = "What is 12 * 7?"
        ui.run_button.click()
        time.sleep(0.5)
        ui.stop_button.click()
        assert ui.wait(5) and "stopped" in ui.view.status.value
        assert fresh_sim.wait_idle(5) and fresh_sim.stats()["streams_abandoned"] == 1
    finally:
        ui.close()
