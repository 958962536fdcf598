"""`release --gradescope DIR` builds one autograder.zip per exercise; unzipped as Gradescope does (under
AUTOGRADER_ROOT instead of /autograder), its run_autograder grades a solution, a blank exercise and a broken upload,
and always leaves a results.json."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from course_instructors import release
from course_instructors.hidden_checks import with_hidden

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "02_sse_events"  # its checks hardly depend on timing: a loaded machine cannot fail the solution


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files the zips are built from, with exercises regenerated (whatever the checkout's exercises/ holds)."""
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(ROOT / "solutions", root / "solutions")
    for name in release.AUTOGRADER_FILES + ["requirements.txt", "requirements-dev.txt"]:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, root / name)
    release.write(root)
    return root


@pytest.fixture(scope="module")
def zips(repo_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    made = release.gradescope_zips(tmp_path_factory.mktemp("gradescope") / "out", repo_copy)
    return {p.parent.name: p for p in made}


def test_one_zip_per_exercise_with_the_scripts_the_hidden_checks_and_no_solutions(zips: dict[str, Path]) -> None:
    assert sorted(zips) == sorted(p.stem for p in (ROOT / "solutions").glob("*.ipynb"))
    archive = zipfile.ZipFile(zips[ASSIGNMENT])
    names = archive.namelist()
    for needed in (
        "setup.sh",
        "run_autograder",
        "finish_gradescope.py",
        "constraints.txt",
        "pyproject.toml",
        "instructors/course_instructors/grade/runner.py",
        "instructors/course_instructors/hidden_checks/ex02.py",
        "course_utils/checks/ex02.py",
    ):
        assert needed in names, needed
    assert not [n for n in names if n.startswith(("solutions/", "tests/")) or "__pycache__" in n]
    for script in ("setup.sh", "run_autograder"):
        assert (archive.getinfo(script).external_attr >> 16) & stat.S_IXUSR, script
    assert 'EXERCISE="02"' in archive.read("run_autograder").decode()
    assert "python3.11" in archive.read("setup.sh").decode()
    assert "anthropic==" in archive.read("constraints.txt").decode()


def unpack(zip_path: Path, root: Path) -> Path:
    """Lay the zip out as Gradescope does: contents in ROOT/source, run_autograder copied to ROOT."""
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(root / "source")
        for info in archive.infolist():  # extractall drops the permission bits
            mode = info.external_attr >> 16
            if mode:
                os.chmod(root / "source" / info.filename, mode & 0o777)
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    return root


def run_autograder(root: Path, python: str | None = sys.executable) -> dict[str, Any]:
    """Run run_autograder with AUTOGRADER_ROOT=root; the results.json it leaves."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "COURSE_", "PYTHONPATH"))}
    env["AUTOGRADER_ROOT"] = str(root)
    if python:
        env["COURSE_PYTHON"] = python  # this venv instead of setup.sh's (that one is tested below, slow)
    done = subprocess.run(
        [str(root / "run_autograder")], env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((root / "results" / "results.json").read_text())


def assert_gradescope_shape(results: dict[str, Any]) -> None:
    assert isinstance(results["execution_time"], int) and results["execution_time"] >= 0
    assert isinstance(results["score"], (int, float)) and isinstance(results["output"], str)
    for test in results["tests"]:
        assert {"name", "score", "max_score", "visibility"} <= set(test)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_run_autograder_grades_a_solution_a_blank_and_a_broken_upload(
    zips: dict[str, Path], repo_copy: Path, tmp_path: Path
) -> None:
    checks = with_hidden("02").checks
    total = sum(c.points for c in checks)

    solution = unpack(zips[ASSIGNMENT], tmp_path / "solution")
    shutil.copy(ROOT / "solutions" / f"{ASSIGNMENT}.ipynb", solution / "submission")
    results = run_autograder(solution)
    assert_gradescope_shape(results)
    assert results["score"] == total, results["output"]
    assert len(results["tests"]) == len(checks)  # the zip's hidden checks ran too
    assert {t["visibility"] for t in results["tests"]} >= {"visible", "after_published"}

    blank = unpack(zips[ASSIGNMENT], tmp_path / "blank")
    shutil.copy(repo_copy / "exercises" / f"{ASSIGNMENT}.ipynb", blank / "submission")
    results = run_autograder(blank)
    assert_gradescope_shape(results)
    assert results["score"] == 0 and len(results["tests"]) == len(checks)

    broken = unpack(zips[ASSIGNMENT], tmp_path / "broken")
    (broken / "submission" / f"{ASSIGNMENT}.ipynb").write_text("{ this is not a notebook")
    results = run_autograder(broken)
    assert_gradescope_shape(results)
    assert results["score"] == 0


def test_a_crashing_grader_still_leaves_a_results_json_saying_why(zips: dict[str, Path], tmp_path: Path) -> None:
    root = unpack(zips[ASSIGNMENT], tmp_path / "crash")
    shutil.copy(ROOT / "solutions" / f"{ASSIGNMENT}.ipynb", root / "submission")
    results = run_autograder(root, python=str(tmp_path / "no-such-python"))
    assert_gradescope_shape(results)
    assert results["score"] == 0 and results["tests"] == []
    assert "could not grade" in results["output"] and "exit status 127" in results["output"]


@pytest.mark.slow
@pytest.mark.install
@pytest.mark.timeout(1500)
@pytest.mark.skipif(not shutil.which("python3.11"), reason="setup.sh uses the machine's python3.11 when it has one")
def test_setup_sh_builds_the_autograder_venv_that_run_autograder_uses(zips: dict[str, Path], tmp_path: Path) -> None:
    root = unpack(zips[ASSIGNMENT], tmp_path / "autograder")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "COURSE_", "PYTHONPATH"))}
    done = subprocess.run(
        ["bash", str(root / "source" / "setup.sh")],
        env={**env, "AUTOGRADER_ROOT": str(root)},
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "autograder ready" in done.stdout
    shutil.copy(ROOT / "solutions" / f"{ASSIGNMENT}.ipynb", root / "submission")
    results = run_autograder(root, python=None)  # $AUTOGRADER_ROOT/venv/bin/python, as on Gradescope
    assert results["score"] == sum(c.points for c in with_hidden("02").checks), results["output"]
