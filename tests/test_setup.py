"""`setup()` in a fresh interpreter each time (it changes `os.environ`): offline, live, forced offline, `.env`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
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
          "attempts_during_setup": list(attempts), "userdata_imported": "google.colab.userdata" in sys.modules}
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


# A learner starts offline, adds a key to .env, and re-runs the first cell in the same kernel.
RERUN = f"""
import os, pathlib
from course_utils import setup
setup()
pathlib.Path(".env").write_text("ANTHROPIC_API_KEY={FAKE_KEY}\\n")
course = setup()
print("REPORT " + json.dumps({{"mode": course.mode, "base_url": os.environ.get("ANTHROPIC_BASE_URL")}}))
""".replace("import os", "import json, os")
# A stand-in for Colab's `google.colab.userdata`, put on the child's path: it answers from FAKE_COLAB_SECRET (or
# refuses, as Colab does when the learner denies access) and logs every call, so a test can tell it was never asked.
FAKE_USERDATA = r"""
import os
class SecretNotFoundError(Exception): pass
class NotebookAccessError(Exception): pass
def get(key):
    with open(os.environ["FAKE_COLAB_LOG"], "a") as log:
        log.write(key + "\n")
    value = os.environ.get("FAKE_COLAB_SECRET")
    if value == "DENY":
        raise NotebookAccessError(key)
    if value is None:
        raise SecretNotFoundError(key)
    return value
"""
COLAB_CHILD = "import google.colab\n" + CHILD  # a Colab kernel imports google.colab before the first cell runs

# name: (script, extra argument, environment, .env file). No ANTHROPIC_/COURSE_ variables are inherited.
SCENARIOS: dict[str, tuple[str, str, dict[str, str], str | None]] = {
    "offline": (CHILD, "ask", {}, None),
    "live": (CHILD, "-", {"ANTHROPIC_API_KEY": FAKE_KEY}, "COURSE_MODEL=claude-opus-4-5\n"),
    "live_custom_base_url": (
        CHILD,
        "-",
        {"ANTHROPIC_API_KEY": FAKE_KEY, "ANTHROPIC_BASE_URL": "https://gateway.example.com/anthropic"},
        None,
    ),
    "forced_offline_1": (CHILD, "-", {"ANTHROPIC_API_KEY": FAKE_KEY, "COURSE_OFFLINE": "1"}, None),
    "forced_offline_true": (CHILD, "-", {"ANTHROPIC_API_KEY": FAKE_KEY, "COURSE_OFFLINE": "true"}, None),
    "dotenv_key": (CHILD, "-", {}, f"ANTHROPIC_API_KEY={FAKE_KEY}\n"),
    "dotenv_key_and_offline": (CHILD, "-", {}, f"ANTHROPIC_API_KEY={FAKE_KEY}\nCOURSE_OFFLINE=1\n"),
    "rerun_after_adding_a_key": (RERUN, "-", {}, None),
    "colab_secret": (COLAB_CHILD, "-", {"FAKE_COLAB_SECRET": FAKE_KEY}, None),
    "colab_no_secret": (COLAB_CHILD, "-", {}, None),
    "colab_access_denied": (COLAB_CHILD, "-", {"FAKE_COLAB_SECRET": "DENY"}, None),
    "colab_secret_but_offline": (COLAB_CHILD, "-", {"FAKE_COLAB_SECRET": FAKE_KEY, "COURSE_OFFLINE": "1"}, None),
    "colab_env_key_wins": (
        COLAB_CHILD,
        "-",
        {"FAKE_COLAB_SECRET": "sk-ant-other", "ANTHROPIC_API_KEY": FAKE_KEY},
        None,
    ),
    "not_colab": (CHILD, "-", {"FAKE_COLAB_SECRET": FAKE_KEY}, None),
}


FOLDERS: dict[str, Path] = {}  # each scenario's working folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, subprocess.Popen[str]]]:
    """Every scenario's child, all started at once (each takes a second or more to start), each in its own folder."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "COURSE_"))}
    fake = tmp_path_factory.mktemp("fake_colab")
    (fake / "google" / "colab").mkdir(parents=True)
    (fake / "google" / "__init__.py").write_text("")
    (fake / "google" / "colab" / "__init__.py").write_text("")
    (fake / "google" / "colab" / "userdata.py").write_text(FAKE_USERDATA)
    started = {}
    for name, (script, extra, env, dotenv) in SCENARIOS.items():
        folder = FOLDERS[name] = tmp_path_factory.mktemp(name)
        if dotenv is not None:
            (folder / ".env").write_text(dotenv)
        paths = [str(fake)] + ([base["PYTHONPATH"]] if base.get("PYTHONPATH") else [])
        started[name] = subprocess.Popen(
            [sys.executable, "-c", script, OFFLINE_KEY, extra],
            cwd=folder,
            text=True,
            env={
                **base,
                "COURSE_SIM_SPEED": "0",
                "PYTHONPATH": os.pathsep.join(paths),
                "FAKE_COLAB_LOG": str(folder / "userdata.log"),
                **env,
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    yield started
    for process in started.values():
        if process.poll() is None:
            process.kill()
            process.communicate()


def result(runs: dict[str, subprocess.Popen[str]], name: str) -> tuple[list[str], dict[str, Any], str]:
    """A scenario's printed lines (the report excluded), its report, and everything it wrote."""
    stdout, stderr = runs[name].communicate(timeout=60)
    output = stdout + stderr
    assert runs[name].returncode == 0, output
    *lines, last = stdout.splitlines()
    return lines, json.loads(last.removeprefix("REPORT ")), output


def test_offline_by_default(runs: dict[str, subprocess.Popen[str]]) -> None:
    lines, report, output = result(runs, "offline")
    assert len(lines) == 1 and lines[0].startswith(OFFLINE_LINE) and DEFAULT_MODEL in lines[0]
    assert report["mode"] == "offline" and report["model"] == DEFAULT_MODEL
    assert report["base_url"] == report["simulator"] and report["base_url"].startswith("http://127.0.0.1:")
    assert report["key_is_placeholder"]  # the SDK needs some key; a plain anthropic.Anthropic() just works
    assert report["reply"].startswith("Hello!")
    assert output.count("\n") == 2  # one line from setup(), one report: nothing else printed, nothing on stderr


def test_live_with_a_key_prints_the_live_line_and_touches_nothing(runs: dict[str, subprocess.Popen[str]]) -> None:
    lines, report, output = result(runs, "live")
    assert len(lines) == 1 and lines[0].startswith(LIVE_LINE)
    assert report["mode"] == "live" and "simulator" not in report
    assert report["model"] == "claude-opus-4-5"  # read from the .env in the working directory
    assert report["base_url"] is None  # unset stays unset: the SDK goes to the real API
    assert report["attempts_during_setup"] == []  # no network call, not even a DNS lookup
    assert FAKE_KEY not in output and FAKE_KEY[-12:] not in output


def test_live_keeps_a_custom_base_url(runs: dict[str, subprocess.Popen[str]]) -> None:
    lines, report, _ = result(runs, "live_custom_base_url")
    assert lines[0].startswith(LIVE_LINE) and report["base_url"] == "https://gateway.example.com/anthropic"


@pytest.mark.parametrize("name", ["forced_offline_1", "forced_offline_true"])
def test_course_offline_forces_offline_even_with_a_key(runs: dict[str, subprocess.Popen[str]], name: str) -> None:
    lines, report, output = result(runs, name)
    assert lines[0].startswith(OFFLINE_LINE) and report["mode"] == "offline"
    assert report["key_is_placeholder"]  # the real key is never sent to the simulator
    assert report["base_url"] == report["simulator"]
    assert FAKE_KEY not in output


def test_a_dotenv_key_in_the_working_directory_is_loaded(runs: dict[str, subprocess.Popen[str]]) -> None:
    lines, report, output = result(runs, "dotenv_key")
    assert lines[0].startswith(LIVE_LINE) and report["mode"] == "live"
    assert FAKE_KEY not in output
    # ...and COURSE_OFFLINE in the same .env wins over the key.
    lines, report, _ = result(runs, "dotenv_key_and_offline")
    assert lines[0].startswith(OFFLINE_LINE) and report["mode"] == "offline"


def test_a_key_added_to_dotenv_after_an_offline_setup_switches_to_live(runs: dict[str, subprocess.Popen[str]]) -> None:
    lines, report, output = result(runs, "rerun_after_adding_a_key")
    assert lines[0].startswith(OFFLINE_LINE) and lines[1].startswith(LIVE_LINE)
    assert report == {"mode": "live", "base_url": None}  # the simulator's URL is gone: the SDK goes to the real API
    assert FAKE_KEY not in output


def userdata_calls(name: str) -> list[str]:
    """The keys a scenario's child asked the fake Colab userdata for."""
    path = FOLDERS[name] / "userdata.log"
    return path.read_text().split() if path.exists() else []


def test_on_colab_the_key_comes_from_the_notebooks_secrets(runs: dict[str, subprocess.Popen[str]]) -> None:
    lines, report, output = result(runs, "colab_secret")
    assert lines[0].startswith(LIVE_LINE) and report["mode"] == "live" and report["base_url"] is None
    assert userdata_calls("colab_secret") == ["ANTHROPIC_API_KEY"]
    assert report["attempts_during_setup"] == [] and FAKE_KEY not in output


@pytest.mark.parametrize("name", ["colab_no_secret", "colab_access_denied"])
def test_on_colab_without_a_secret_or_access_the_course_runs_offline(
    runs: dict[str, subprocess.Popen[str]], name: str
) -> None:
    lines, report, output = result(runs, name)
    assert lines[0].startswith(OFFLINE_LINE) and report["mode"] == "offline"
    assert userdata_calls(name) == ["ANTHROPIC_API_KEY"] and "Error" not in output


@pytest.mark.parametrize("name", ["colab_secret_but_offline", "colab_env_key_wins"])
def test_colab_secrets_are_not_asked_when_they_cannot_matter(runs: dict[str, subprocess.Popen[str]], name: str) -> None:
    _, report, _ = result(runs, name)
    assert report["mode"] == ("offline" if name == "colab_secret_but_offline" else "live")
    assert userdata_calls(name) == []  # Colab would have shown a consent prompt for nothing


def test_outside_colab_google_colab_is_never_imported(runs: dict[str, subprocess.Popen[str]]) -> None:
    _, report, _ = result(runs, "not_colab")
    assert report["mode"] == "offline" and not report["userdata_imported"]
    assert userdata_calls("not_colab") == []
