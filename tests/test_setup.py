"""`setup()` in a fresh interpreter each time (it changes `os.environ`): offline, live, forced offline, `.env`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from course_utils.mode import DEFAULT_MODEL, OFFLINE_KEY

FAKE_KEY = "sk-ant-api03-" + "Zx9" * 30 + "-AbCdEf"  # shaped like a real key; never valid
OFFLINE_LINE = "Offline mode:"
LIVE_LINE = "Live mode:"

# Runs in the child: records every socket connection and DNS lookup, calls setup(), reports as one JSON line;
# with "ask", it then sends one request with a plain `anthropic.Anthropic()`.
CHILD = r"""
import json, os, socket, sys
attempts = []
real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo
def connect(self, address):
    attempts.append(str(address))
    return real_connect(self, address)
def getaddrinfo(host, *args, **kwargs):
    attempts.append(f"dns:{host}")
    return real_getaddrinfo(host, *args, **kwargs)
socket.socket.connect, socket.getaddrinfo = connect, getaddrinfo

from course_utils import setup
course = setup()
report = {"mode": course.mode, "offline": course.offline, "model": course.model,
          "base_url": os.environ.get("ANTHROPIC_BASE_URL"), "key_is_placeholder": None,
          "attempts_during_setup": list(attempts)}
if course.offline:
    report["key_is_placeholder"] = os.environ["ANTHROPIC_API_KEY"] == sys.argv[1]
    report["simulator"] = course.simulator.base_url
if sys.argv[2] == "ask":  # only when needed: the SDK takes seconds to import
    import anthropic
    message = anthropic.Anthropic().messages.create(
        model=course.model, max_tokens=20, messages=[{"role": "user", "content": "Hello"}])
    report["reply"] = message.content[0].text
print("REPORT " + json.dumps(report))
"""


def run_setup(tmp_path: Path, env: dict[str, str], dotenv: str | None = None,
              ask: bool = False) -> tuple[str, dict[str, Any], str]:
    """setup() in a child, in `tmp_path`, with no ANTHROPIC_/COURSE_ variables but `env`; its line, report, output."""
    if dotenv is not None:
        (tmp_path / ".env").write_text(dotenv)
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("ANTHROPIC_", "COURSE_")) and k != "PYTHONWARNINGS"}
    done = subprocess.run([sys.executable, "-c", CHILD, OFFLINE_KEY, "ask" if ask else "-"], cwd=tmp_path, capture_output=True, text=True,
                          env={**base, "COURSE_SIM_SPEED": "0", **env}, timeout=60)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    lines = done.stdout.splitlines()
    report = json.loads(lines[-1].removeprefix("REPORT "))
    return lines[0], report, output


def test_offline_by_default(tmp_path: Path) -> None:
    line, report, output = run_setup(tmp_path, {}, ask=True)
    assert line.startswith(OFFLINE_LINE) and DEFAULT_MODEL in line
    assert report["mode"] == "offline" and report["model"] == DEFAULT_MODEL
    assert report["base_url"] == report["simulator"] and report["base_url"].startswith("http://127.0.0.1:")
    assert report["key_is_placeholder"]  # the SDK needs some key; a plain anthropic.Anthropic() just works
    assert report["reply"].startswith("Hello!")
    assert output.count("\n") == 2  # one line from setup(), one report: nothing else printed


def test_live_with_a_key_prints_the_live_line_and_touches_nothing(tmp_path: Path) -> None:
    line, report, output = run_setup(tmp_path, {"ANTHROPIC_API_KEY": FAKE_KEY},
                                     dotenv="COURSE_MODEL=claude-opus-4-5\n")
    assert line.startswith(LIVE_LINE)
    assert report["mode"] == "live" and "simulator" not in report
    assert report["model"] == "claude-opus-4-5"  # read from the .env in the working directory
    assert report["base_url"] is None  # unset stays unset: the SDK goes to the real API
    assert report["attempts_during_setup"] == []  # no network call, not even a DNS lookup
    assert FAKE_KEY not in output and FAKE_KEY[-12:] not in output


def test_live_keeps_a_custom_base_url(tmp_path: Path) -> None:
    custom = "https://gateway.example.com/anthropic"
    line, report, _ = run_setup(tmp_path, {"ANTHROPIC_API_KEY": FAKE_KEY, "ANTHROPIC_BASE_URL": custom})
    assert line.startswith(LIVE_LINE) and report["base_url"] == custom


@pytest.mark.parametrize("value", ["1", "true"])
def test_course_offline_forces_offline_even_with_a_key(tmp_path: Path, value: str) -> None:
    line, report, output = run_setup(tmp_path, {"ANTHROPIC_API_KEY": FAKE_KEY, "COURSE_OFFLINE": value})
    assert line.startswith(OFFLINE_LINE) and report["mode"] == "offline"
    assert report["key_is_placeholder"]  # the real key is never sent to the simulator
    assert report["base_url"] == report["simulator"]
    assert FAKE_KEY not in output


def test_a_dotenv_key_in_the_working_directory_is_loaded(tmp_path: Path) -> None:
    line, report, output = run_setup(tmp_path, {}, dotenv=f"ANTHROPIC_API_KEY={FAKE_KEY}\n")
    assert line.startswith(LIVE_LINE) and report["mode"] == "live"
    assert FAKE_KEY not in output
    # ...and COURSE_OFFLINE in the same .env wins over the key.
    line, report, _ = run_setup(tmp_path, {}, dotenv=f"ANTHROPIC_API_KEY={FAKE_KEY}\nCOURSE_OFFLINE=1\n")
    assert line.startswith(OFFLINE_LINE) and report["mode"] == "offline"


def test_a_key_added_to_dotenv_after_an_offline_setup_switches_to_live(tmp_path: Path) -> None:
    # A learner starts offline, adds a key to .env, and re-runs the first cell in the same kernel.
    script = (
        "import os, pathlib\n"
        "from course_utils import setup\n"
        "setup()\n"
        f"pathlib.Path('.env').write_text('ANTHROPIC_API_KEY={FAKE_KEY}\\n')\n"
        "course = setup()\n"
        "print(course.mode, os.environ.get('ANTHROPIC_BASE_URL'))\n"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "COURSE_"))}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          env={**base, "COURSE_SIM_SPEED": "0"}, timeout=60)
    assert done.returncode == 0, done.stderr
    first, second, result = done.stdout.splitlines()
    assert first.startswith(OFFLINE_LINE) and second.startswith(LIVE_LINE)
    assert result == "live None"  # the simulator's base URL is gone: the SDK goes to the real API again
    assert FAKE_KEY not in done.stdout + done.stderr
