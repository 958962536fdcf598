"""House rules: `ruff check`, `ruff format --check` and `mypy` find nothing, with the configuration in pyproject.toml.

Both run as CI runs them: the venv's own executables (pinned in requirements-dev.txt), from the repository's root, so
they read pyproject.toml's [tool.ruff] and [tool.mypy] and check the paths it names.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

BIN = Path(sys.executable).parent  # the venv's scripts folder (bin/, or Scripts\ on Windows)


def tool(name: str) -> str:
    """The venv's executable `name`; a checkout without it skips, and fails under CI=true."""
    found = shutil.which(name, path=str(BIN))
    if found is None:
        message = f"{name} is not installed in {BIN}: pip install -r requirements-dev.txt (./course test does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def run(*argv: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a checker from the repository's root, with colour off so its report reads plainly in pytest's output."""
    env = {**os.environ, "NO_COLOR": "1", "MYPY_FORCE_COLOR": "0", "FORCE_COLOR": "0"}
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def test_ruff_finds_nothing() -> None:
    done = run(tool("ruff"), "check", "--no-fix", "--output-format", "concise", timeout=120)
    assert done.returncode == 0, f"ruff check found problems:\n{done.stdout}{done.stderr}"


def test_ruff_format_changes_nothing() -> None:
    done = run(tool("ruff"), "format", "--check", timeout=120)
    assert done.returncode == 0, f"ruff format would change these (run `ruff format .`):\n{done.stdout}{done.stderr}"


@pytest.mark.slow
@pytest.mark.timeout(600)  # a cold cache checks every module: about a minute alone, more on a busy machine
def test_mypy_finds_nothing() -> None:
    done = run(tool("mypy"), timeout=540)
    assert done.returncode == 0, f"mypy found problems:\n{done.stdout}{done.stderr}"
