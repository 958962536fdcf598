"""`python -m course_utils.simulator`: the base URL on the first line, served until interrupted, clear errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import anthropic
import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMAND = [sys.executable, "-m", "course_utils.simulator"]


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "COURSE_SIM_SPEED"}
    return {**env, **extra}


def first_line(process: subprocess.Popen[str], timeout: float = 30) -> str:
    """The process's first line of output, without waiting forever if it never comes."""
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(process.stdout.readline() if process.stdout else ""))
    reader.start()
    reader.join(timeout)
    assert line and line[0], f"no output within {timeout} s"
    return line[0].strip()


Serve = Callable[..., "subprocess.Popen[str]"]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start the simulator's CLI; every process started is ended when the test ends."""
    processes: list[subprocess.Popen[str]] = []

    def start(*args: str, **env: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [*COMMAND, *args],
            cwd=ROOT,
            env=environment(**env),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serves_the_sdk_then_exits_cleanly(serve: Serve, sig: signal.Signals) -> None:
    process = serve("--port", "0", "--speed", "0")
    base_url = first_line(process)
    assert base_url.startswith("http://127.0.0.1:")
    client = anthropic.Anthropic(base_url=base_url, api_key="k")
    with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "Hello"}]
    ) as stream:
        assert stream.get_final_text().startswith("Hello!")
    # A stalled stream left open must not hold the exit up.
    stalled = httpx.Client().send(
        httpx.Request(
            "POST",
            base_url + "/v1/messages",
            headers={"x-api-key": "k", "x-sim-fault": "stall_midstream", "x-sim-fault-after": "1"},
            json={
                "model": "claude-haiku-4-5",
                "max_tokens": 50,
                "stream": True,
                "messages": [{"role": "user", "content": "Hello"}],
            },
        ),
        stream=True,
    )
    process.send_signal(sig)
    _, err = process.communicate(timeout=10)
    stalled.close()
    assert process.returncode == 0
    assert "Traceback" not in err and "ERROR" not in err, err


def test_course_sim_speed_is_the_default_pace_and_the_flag_wins(serve: Serve) -> None:
    cases = [
        ({"COURSE_SIM_SPEED": "0"}, [], 0.0),
        ({"COURSE_SIM_SPEED": "2.5"}, [], 2.5),
        ({}, [], 1.0),
        ({"COURSE_SIM_SPEED": "2.5"}, ["--speed", "3"], 3.0),
    ]
    processes = [serve("--port", "0", *args, **env) for env, args, _ in cases]  # started together: quicker
    for process, (_, _, expected) in zip(processes, cases, strict=True):
        assert httpx.get(first_line(process) + "/_sim/stats").json()["speed"] == expected


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--speed", "-1"], {}, "--speed must be a number >= 0"),
        (["--speed", "fast"], {}, "invalid float value: 'fast'"),
        (["--speed", "nan"], {}, "--speed must be a number >= 0"),
        ([], {"COURSE_SIM_SPEED": "fast"}, "COURSE_SIM_SPEED must be a number >= 0"),
        (["--port", "70000"], {}, "--port must be between 0 and 65535"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(args: list[str], env: dict[str, str], message: str) -> None:
    done = subprocess.run(
        [*COMMAND, *args], cwd=ROOT, env=environment(**env), capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_a_port_in_use_is_a_clear_error_not_a_traceback() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*COMMAND, "--port", str(port), "--speed", "0"],
            cwd=ROOT,
            env=environment(),
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 1
    assert done.stderr.strip() == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
    assert done.stdout == ""
