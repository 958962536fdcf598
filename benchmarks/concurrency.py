"""Concurrency: N streams at once through one app process, at real-time pacing, async against thread-per-request.

Three processes on a two-core machine: the app alone on core 1, the simulator and the load client on core 0 (the
app's cores are the ones measured; the other two report their own CPU so a run where they were the bottleneck shows).
The `direct` rows send the same load straight to the simulator (client on core 1): the floor no proxy can beat.
The `direct-shared-core` rows do the same with the client on core 0, next to the simulator, as in every app row:
what the rig itself delivers when the app costs nothing (at N = 500 its two processes fill core 0: these streams lag).
The app as shipped relays the upstream's bytes (`proxy_hop`'s `raw-bytes-ka`); the `async-sdk-sse` rows run the app's
first relay (the SDK's events, FastAPI's SSE framing) under the same load, for comparison.

Each stream asks for a reply cut at `TOKENS` tokens, paced by the simulator at speed 1 (first token after 0.3-0.8 s,
then 50-80 tokens/s in deltas of 1-3 tokens, about 30 events/s). The N streams start evenly over `RAMP` seconds.
The schedule every reply follows is computed with the simulator's own planner, so the report puts each measured
time next to the time it was meant to take.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import anthropic

from course_utils.simulator.plan import make_plan
from course_utils.simulator.replies import compose

from . import harness
from .harness import MODEL, ms, percentile
from .proxy_hop import RELAYS

TOKENS = 60
RAMP = 1.0  # seconds over which the N streams start
TOPICS = ("rivers", "owls", "bread", "volcanoes", "chess", "tides", "bees", "glaciers", "comets", "violins")
WATCHDOG = 90.0  # seconds one run may take before its unfinished streams count as failed
QUIET_WAIT, QUIET_BUDGET = 20.0, 150.0  # seconds to wait for other programs to calm down: per run, in all
CONTENDED = 50.0  # % of a core that other programs took during a run, above which the run is marked as contended


@dataclass(frozen=True)
class Config:
    """One server set-up to load: which app, how uvicorn runs it, and the cores of each process."""

    name: str
    app: str | None  # None: straight to the simulator
    loop: str = "auto"
    http: str = "auto"
    workers: int = 1
    path: str = "/api/chat"
    app_cpus: frozenset[int] = frozenset({1})
    client_cpus: frozenset[int] = frozenset({0})
    label: str = ""


CONFIGS = (
    Config("direct", None, client_cpus=frozenset({1}), label="direct to the simulator (no app)"),
    # The app rows' own floor: the same load with the client on the simulator's core, where it runs in every app row.
    Config(
        "direct-shared-core",
        None,
        client_cpus=frozenset({0}),
        label="direct to the simulator, the client sharing its core as in the app rows (no app)",
    ),
    Config("async-asyncio-h11", "async", loop="asyncio", http="h11", label="async app, asyncio + h11"),
    Config(
        "async-uvloop-httptools",
        "async",
        loop="uvloop",
        http="httptools",
        label="async app, uvloop + httptools (what `./course app` runs): the shipped relay",
    ),
    Config(
        "blocking-threads", "blocking", label="blocking app, a thread per request (sync SDK, events framed by hand)"
    ),
    # The like-for-like twin of the blocking app: the same per-event work (SDK stream, hand-framed bytes), async.
    Config(
        "async-sdk-bytes",
        "async",
        loop="uvloop",
        http="httptools",
        path=RELAYS["sdk-bytes"],
        label="async app, uvloop + httptools, SDK stream framed by hand (the blocking app's work, async)",
    ),
    Config(
        "async-uvloop-2-workers",
        "async",
        loop="uvloop",
        http="httptools",
        workers=2,
        app_cpus=frozenset({0, 1}),
        label="async app, uvloop + httptools, 2 workers on both cores",
    ),
    Config(
        "async-sdk-sse",
        "async",
        loop="uvloop",
        http="httptools",
        path=RELAYS["sdk-sse"],
        label="async app, uvloop + httptools, the first relay: SDK events framed by FastAPI's SSE (proxy_hop's "
        "sdk-sse)",
    ),
)
SHIPPED = "async-uvloop-httptools"  # the shipped app as `./course app` serves it
SIZES = (10, 100, 250, 500, 1000)
TWO_WORKER_SIZES = (500, 1000)  # where one worker has saturated


def chat_body(i: int) -> dict[str, Any]:
    """The i-th stream's request to the app."""
    content = f"Write 500 words about {TOPICS[i % len(TOPICS)]}"
    return {"messages": [{"role": "user", "content": content}], "max_tokens": TOKENS}


def api_body(chat: dict[str, Any]) -> dict[str, Any]:
    """The request the app sends upstream for `chat` (what the simulator sees), as the SDK writes it."""
    return {"max_tokens": chat["max_tokens"], "messages": chat["messages"], "model": MODEL, "stream": True}


@dataclass
class Expected:
    """One reply as the simulator sends it and as it is scheduled."""

    texts: list[str]
    done: dict[str, Any]
    ttft: float  # seconds from the request to the first text delta, at speed 1
    gaps: list[float]  # seconds between text deltas, at speed 1


def expected_replies(sim_url: str) -> list[Expected]:
    """Each topic's reply fetched through the SDK (pacing off), with its schedule from the simulator's planner."""
    client = anthropic.Anthropic(base_url=sim_url, api_key="offline-benchmark", max_retries=0)
    replies = []
    for i in range(len(TOPICS)):
        chat = chat_body(i)
        with client.messages.stream(model=MODEL, **chat) as stream:
            texts = list(stream.text_stream)
            message = stream.get_final_message()
        body = api_body(chat)
        plan = make_plan(body, compose(body), msg_id="msg_schedule", model=MODEL, speed=1.0)
        text_delays = plan.delays[: len(plan.text_chunks)]
        usage = {"input_tokens": message.usage.input_tokens, "output_tokens": message.usage.output_tokens}
        replies.append(
            Expected(
                texts,
                {"stop_reason": message.stop_reason, "usage": usage},
                plan.first_delay + text_delays[0],
                text_delays[1:],
            )
        )
    client.close()
    return replies


async def load(base_url: str, path: str, n: int, *, api: bool) -> tuple[list[harness.ChatResult], float]:
    """N streams started evenly over RAMP seconds; returns what each saw, and the wall time of the whole run."""
    headers = {"x-api-key": "offline-benchmark", "anthropic-version": "2023-06-01"} if api else {}
    async with harness.LoadClient(base_url, headers) as client:

        async def one(i: int) -> harness.ChatResult:
            await asyncio.sleep(RAMP * i / n)
            return await client.chat(path, api_body(chat_body(i)) if api else chat_body(i), api=api)

        started = time.perf_counter()
        tasks = [asyncio.ensure_future(one(i)) for i in range(n)]
        done, pending = await asyncio.wait(tasks, timeout=WATCHDOG)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        results = [t.result() if t in done else harness.ChatResult(failure="watchdog") for t in tasks]
        return results, time.perf_counter() - started


def check(results: list[harness.ChatResult], expected: list[Expected]) -> dict[str, int]:
    """Events lost (expected, never received) and garbled (received, but not what was sent) over all streams."""
    lost = garbled = 0
    for i, result in enumerate(results):
        want = expected[i % len(expected)]
        got = result.texts
        wrong = sum(a != b for a, b in zip(got, want.texts, strict=False))  # a short stream: its missing ones are lost
        garbled += result.garbled + wrong + max(0, len(got) - len(want.texts))
        lost += max(0, len(want.texts) - len(got)) + (result.terminal != "done")
        if result.terminal == "done" and result.terminal_data != want.done:
            garbled += 1
    return {
        "events_expected": sum(len(expected[i % len(expected)].texts) + 1 for i in range(len(results))),
        "events_lost": lost,
        "events_garbled": garbled,
    }


def why(result: harness.ChatResult) -> str | None:
    """What went wrong with a stream, in a word or two: an HTTP status and error type, an error event, a failure."""
    if result.failure:
        return result.failure
    if result.status not in (0, 200):
        return f"{result.status} {((result.terminal_data or {}).get('error') or {}).get('type')}"
    if result.terminal == "error":
        return f"error event {(result.terminal_data or {}).get('type')}"
    return None


def summarize(results: list[harness.ChatResult], expected: list[Expected]) -> dict[str, Any]:
    """Latency next to the schedule: time to first token, gaps between tokens, and how late each stream ended."""
    ttft = [r.ttft for r in results if r.ttft is not None]
    gaps = [g for r in results for g in r.gaps]
    lag = []
    for i, r in enumerate(results):
        want = expected[i % len(expected)]
        if r.terminal == "done" and len(r.times) == len(want.texts):
            lag.append((r.times[-1] - r.times[0]) - sum(want.gaps))
    planned_ttft = [expected[i % len(expected)].ttft for i in range(len(results))]
    n = len(results)
    # Had every event left on time: the last stream starts at the end of the ramp and ends on its schedule.
    planned_wall = max(RAMP * i / n + planned_ttft[i] + sum(expected[i % len(expected)].gaps) for i in range(n))
    planned_events = sum(len(expected[i % len(expected)].texts) for i in range(n))
    planned_gaps = [g for i in range(len(results)) for g in expected[i % len(expected)].gaps]
    return {
        "completed": sum(r.terminal == "done" for r in results),
        "errors": sum(r.terminal == "error" for r in results),
        "http_errors": sum(r.status not in (0, 200) for r in results),
        "failures": sum(r.failure is not None for r in results),
        "why": dict(Counter(why(r) for r in results if why(r))),
        "ttft_ms": {"p50": ms(percentile(ttft, 50)), "p99": ms(percentile(ttft, 99))},
        "ttft_scheduled_ms": {"p50": ms(percentile(planned_ttft, 50)), "p99": ms(percentile(planned_ttft, 99))},
        "gap_ms": {"p50": ms(percentile(gaps, 50)), "p99": ms(percentile(gaps, 99))},
        "gap_scheduled_ms": {"p50": ms(percentile(planned_gaps, 50)), "p99": ms(percentile(planned_gaps, 99))},
        "stream_lag_ms": {"p50": ms(percentile(lag, 50)), "p99": ms(percentile(lag, 99))},
        "scheduled_text_events_per_s": round(planned_events / planned_wall),
    }


def run_one(
    config: Config, n: int, sim: harness.Service, expected: list[Expected], quiet_wait: float = QUIET_WAIT
) -> dict[str, Any]:
    """Load one configuration with N streams and report latency, correctness and each process's usage."""
    harness.reset_simulator(sim)
    app = (
        None
        if config.app is None
        else harness.start_app(
            config.app, sim.url, cpus=set(config.app_cpus), loop=config.loop, http=config.http, workers=config.workers
        )
    )
    url = sim.url if app is None else app.url
    waited = harness.wait_for_quiet(quiet_wait)
    main_thread_cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(config.client_cpus))  # this thread runs the client's event loop
    try:
        cpu0, busy0 = harness.process_cpu(), harness.machine_busy()
        with harness.Monitor(sim.pid) as sim_usage:
            if app is None:
                results, wall = harness.run_async(load(url, "/v1/messages", n, api=True))
                app_usage = None
            else:
                with harness.Monitor(app.pid) as app_monitor:
                    results, wall = harness.run_async(load(url, config.path, n, api=False))
                app_usage = app_monitor.usage
        client_cpu = harness.process_cpu() - cpu0
        busy = harness.machine_busy() - busy0
    finally:
        os.sched_setaffinity(0, main_thread_cpus)
        if app is not None:
            app.stop()
    deadline = time.monotonic() + 10
    while (stats := harness.sim_stats(sim))["streams_open"] and time.monotonic() < deadline:
        time.sleep(0.05)
    row: dict[str, Any] = {"config": config.name, "n": n, **summarize(results, expected), **check(results, expected)}
    delivered = sum(len(r.texts) for r in results)
    row.update(
        {
            "wall_s": round(wall, 2),
            "text_events_per_s": round(delivered / wall),
            "app": app_usage.to_dict() if app_usage else None,
            "simulator": sim_usage.usage.to_dict() if sim_usage.usage else None,
            "client": {"cpu_seconds": round(client_cpu, 3), "cpu_percent": round(100 * client_cpu / wall, 1)},
            # CPU that other programs on the machine took during the run, in % of one core: the noise in these figures.
            "other_programs_cpu_percent": round(
                100
                * max(
                    0.0, busy - client_cpu - sim_usage.usage.cpu_seconds - (app_usage.cpu_seconds if app_usage else 0.0)
                )
                / wall,
                1,
            ),
            "waited_for_quiet_s": waited,
            "upstream_streams_open_after": stats["streams_open"],
        }
    )
    return row


def run(sizes: tuple[int, ...] = SIZES, configs: tuple[Config, ...] = CONFIGS) -> dict[str, Any]:
    """Every configuration at every N (two workers only where one has saturated), with one simulator throughout."""
    rows: list[dict[str, Any]] = []
    with harness.start_simulator(0, cpus={0}) as sim:
        expected = expected_replies(sim.url)
        harness.set_speed(sim, 1.0)
        for config in configs:
            for n in sizes:
                if config.workers > 1 and n not in TWO_WORKER_SIZES:
                    continue
                budget = QUIET_BUDGET - sum(row["waited_for_quiet_s"] for row in rows)
                rows.append(run_one(config, n, sim, expected, quiet_wait=max(0.0, min(QUIET_WAIT, budget))))
                print(json.dumps(rows[-1]), flush=True)
    return {
        "tokens_per_stream": TOKENS,
        "ramp_s": RAMP,
        "pacing": "simulator speed 1",
        "configs": {c.name: c.label for c in configs},
        "runs": rows,
        "saturation": saturation(rows),
    }


def saturation(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per configuration, the largest N served on schedule: every event delivered, and at p99 the first token and
    the last one no more than half a second later than scheduled."""
    verdict: dict[str, Any] = {}
    for row in rows:
        late_start = (row["ttft_ms"]["p99"] or float("inf")) - row["ttft_scheduled_ms"]["p99"]
        ok = (
            row["events_lost"] == 0
            and row["events_garbled"] == 0
            and late_start < 500
            and (row["stream_lag_ms"]["p99"] or float("inf")) < 500
        )
        entry = verdict.setdefault(row["config"], {"largest_n_on_schedule": None, "first_n_late": None})
        if ok and entry["first_n_late"] is None:
            entry["largest_n_on_schedule"] = row["n"]
        elif not ok and entry["first_n_late"] is None:
            entry["first_n_late"] = row["n"]
    return verdict


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
