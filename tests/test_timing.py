"""Timelines of real replies from the real SDK over HTTP, and when a program's output reaches a terminal or a pipe."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import anthropic
import pytest

from course_utils.simulator import Simulator
from course_utils.timing import Timeline, time_output

MODEL = "claude-haiku-4-5"
PROMPT = [{"role": "user", "content": "Tell me about the ocean."}]
SANITIZED_DURATION = re.compile(r"\b\d+(\.\d+)?\s?(ms|s|seconds|µs)\b")  # the shape tests/nbval_sanitize.cfg replaces


def test_a_timeline_measures_from_the_request_to_each_piece() -> None:
    timeline = Timeline("demo")
    time.sleep(0.05)
    timeline.record("")  # the SDK can yield an empty piece; it is not the first *visible* text
    timeline.record("Hello")
    time.sleep(0.05)
    timeline.record(", world")
    timeline.finish()
    first_ended = timeline.ended
    timeline.finish()  # a second finish keeps the first end time

    assert timeline.sent == pytest.approx(0, abs=0.01)
    assert timeline.first_at == timeline.arrivals[1][0]
    assert 0.05 <= timeline.ttft < timeline.total
    assert timeline.ended == first_ended
    assert (timeline.text, timeline.chars) == ("Hello, world", 12)
    times, counts = timeline.curve()
    assert counts == [0, 0, 5, 12, 12]
    assert times == [timeline.sent, *(t for t, _ in timeline.arrivals), timeline.ended]
    assert times == sorted(times)


def test_timelines_sharing_an_origin_share_a_clock() -> None:
    first = Timeline("first")
    time.sleep(0.05)
    second = Timeline("second", origin=first.origin)
    second.record("x")
    second.finish()
    assert second.sent >= 0.05  # sent later on the shared clock...
    assert second.ttft < 0.05  # ...but its own time to first token starts at its own request
    assert second.total == pytest.approx(second.ended - second.sent)


def test_a_timeline_is_a_context_manager_and_an_empty_one_says_so() -> None:
    with Timeline("nothing") as timeline:
        pass
    assert timeline.ttft is None and timeline.first_at is None and timeline.total is not None
    assert "no text" in timeline.summary()
    assert "not finished" in Timeline().summary()


def test_the_summary_prints_durations_the_sanitizer_replaces() -> None:
    timeline = Timeline("streaming")
    timeline.record("abc")
    timeline.finish()
    summary = timeline.summary()
    assert summary.startswith("streaming: first token after ")
    assert len(SANITIZED_DURATION.findall(summary)) == 2
    assert summary.endswith("3 characters in 1 pieces")


def test_streaming_shows_the_first_words_sooner_in_the_same_total_time(fresh_sim: Simulator) -> None:
    fresh_sim.speed = 1  # timing is the point: real pacing
    client = anthropic.Anthropic(base_url=fresh_sim.base_url, api_key="test-key")
    request = {"model": MODEL, "max_tokens": 20, "messages": PROMPT}

    blocking = Timeline("blocking")
    message = client.messages.create(**request)
    blocking.record(message.content[0].text)
    blocking.finish()

    streaming = Timeline("streaming")
    with client.messages.stream(**request) as stream:
        for text in stream.text_stream:
            streaming.record(text)
    streaming.finish()

    assert streaming.text == blocking.text  # the same reply, delivered differently
    assert len(streaming.arrivals) > 5 and len(blocking.arrivals) == 1
    assert streaming.ttft < blocking.ttft * 0.8
    assert streaming.total == pytest.approx(blocking.total, rel=0.3)


CHILD = "import sys, time; print('a', end=END, flush=FLUSH); time.sleep(0.4); print('b')"


def child(end: str = "", flush: bool = False) -> list[str]:
    return [sys.executable, "-c", CHILD.replace("END", repr(end)).replace("FLUSH", str(flush))]


@pytest.mark.parametrize(
    ("terminal", "end", "flush", "early"),
    [
        (True, "", False, False),  # a terminal is line-buffered: no newline, nothing shown until the end
        (True, "", True, True),  # flush=True sends it at once
        (True, "\n", False, True),  # a newline flushes a terminal's line buffer
        (False, "\n", False, False),  # a pipe is block-buffered: even a newline waits for the end
        (False, "", True, True),
    ],
)
def test_time_output_shows_how_python_buffers_stdout(terminal: bool, end: str, flush: bool, early: bool) -> None:
    timeline = time_output(child(end, flush), terminal=terminal)
    assert timeline.text == f"a{end}b\n"
    arrived_early = timeline.first_at < timeline.ended - 0.25
    assert arrived_early is early, timeline.arrivals
    assert timeline.ended == timeline.arrivals[-1][0] <= timeline.exited  # it ends at the last text, not the exit


def test_time_output_ignores_pythonunbuffered_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")  # Jupyter kernels run with it set
    assert time_output(child(), terminal=True).first_at > 0.3
    env = {"PYTHONUNBUFFERED": "1", "PATH": "/usr/bin:/bin"}
    assert time_output(child(), terminal=True, env=env).first_at < 0.3


def test_time_output_can_start_the_clock_when_the_program_says_so() -> None:
    code = "import time; time.sleep(0.3); print('go', flush=True); time.sleep(0.2); print('done', flush=True)"
    timeline = time_output([sys.executable, "-c", code], begin="go\n")
    assert timeline.text == "done\n"  # the marker is not part of the output
    assert timeline.sent >= 0.3  # the clock started at the marker, after start-up and the first sleep
    assert 0.15 < timeline.ttft < 0.45
    with pytest.raises(ValueError, match="never printed 'start'"):
        time_output([sys.executable, "-c", "print('hello')"], begin="start")


def test_time_output_reports_failure_and_silence() -> None:
    with pytest.raises(subprocess.CalledProcessError) as failed:
        time_output([sys.executable, "-c", "print('oops'); raise SystemExit(3)"], terminal=False)
    assert failed.value.returncode == 3 and failed.value.output == "oops\n"
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        time_output([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert time.monotonic() - start < 5  # the silent program was killed, not waited for
