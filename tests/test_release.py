"""Exercises are generated from the solutions, byte for byte; the learners' bundle leaves out what it must."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from course_instructors import release
from course_instructors.release import BEGIN, END, MarkerError, strip_solutions

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


def test_exercises_are_in_sync_with_the_solutions() -> None:
    # The same check as `python -m course_instructors.release --check`, which CI runs through this test.
    assert release.differences() == []
    assert release.main(["--check"]) == 0


def test_every_solution_has_an_exercise_and_the_other_way_round() -> None:
    assert [p.name for p in SOLUTIONS] == sorted(p.name for p in (ROOT / "exercises").glob("*.ipynb"))
    assert len(SOLUTIONS) >= 8  # lessons 01-08 each have one


def test_a_solution_becomes_a_stub_at_its_indentation() -> None:
    source = f'def f(x):\n    """Doc."""\n    {BEGIN}\n    y = x + 1\n    return y\n    {END}\n\nprint(f)'
    assert strip_solutions(source) == (
        'def f(x):\n    """Doc."""\n    # YOUR CODE HERE\n    raise NotImplementedError\n\nprint(f)'
    )
    assert strip_solutions(f"{BEGIN}\nsecret\n{END}", markdown=True) == "YOUR ANSWER HERE"


@pytest.mark.parametrize("source", [f"{BEGIN}\nx = 1", f"x = 1\n{END}", f"{BEGIN}\n{BEGIN}\n{END}\n{END}"])
def test_unbalanced_markers_are_refused(source: str) -> None:
    with pytest.raises(MarkerError):
        strip_solutions(source)


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.name)
def test_exercise_holds_no_answer_and_no_output(solution: Path) -> None:
    sol = nbformat.read(solution, as_version=4)
    ex = nbformat.read(ROOT / "exercises" / solution.name, as_version=4)
    assert ex.metadata == {
        "kernelspec": release.KERNELSPEC,
        "language_info": {"name": "python"},
        "course": {"exercise": solution.name[:2]},
    }
    answers = set()
    for cell in sol.cells:
        inside = False
        for line in cell.source.splitlines():
            inside = (inside or line.strip() == BEGIN) and line.strip() != END
            if inside and line.strip() and line.strip() != BEGIN and not line.strip().startswith("#"):
                answers.add(line.strip())
    assert answers, "a solution notebook without marked answers"
    exercise_code = "\n".join(c.source for c in ex.cells)
    leaked = [line for line in answers if line in exercise_code.splitlines() or f"\n{line}\n" in exercise_code]
    assert not [line for line in leaked if len(line) > 25], leaked  # short lines like `return events` may recur
    assert BEGIN not in exercise_code and END not in exercise_code
    assert exercise_code.count("raise NotImplementedError") >= 3
    for cell in ex.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
        assert set(cell.metadata) <= {"tags"}
    assert [c.source for c in ex.cells if "check(" in c.source and c.cell_type == "code"] == [
        c.source for c in sol.cells if "check(" in c.source and c.cell_type == "code"
    ]


def test_generation_is_deterministic_whatever_the_solutions_outputs(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "solutions", tmp_path / "solutions")
    (tmp_path / "exercises").mkdir()
    first = {p.name: text for p, text in release.build(tmp_path).items()}
    for path in (tmp_path / "solutions").glob("*.ipynb"):  # as if re-executed: new counts, outputs, metadata
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            cell.metadata["collapsed"] = True
            if cell.cell_type == "code":
                cell.execution_count = 99
                cell.outputs = [nbformat.v4.new_output("stream", text="different\n")]
        nb.metadata["widgets"] = {"state": {"x": 1}}
        nbformat.write(nb, path)
    assert {p.name: text for p, text in release.build(tmp_path).items()} == first
    assert first == {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "exercises").glob("*.ipynb")}


def test_check_reports_stale_missing_and_orphan_exercises(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "solutions", tmp_path / "solutions")
    shutil.copytree(ROOT / "exercises", tmp_path / "exercises")
    assert release.differences(tmp_path) == []
    names = sorted(p.name for p in SOLUTIONS)
    stale = tmp_path / "exercises" / names[0]
    stale.write_text(
        stale.read_text(encoding="utf-8").replace("raise NotImplementedError", "return 42", 1), encoding="utf-8"
    )
    (tmp_path / "exercises" / names[1]).unlink()
    shutil.copy(SOLUTIONS[0], tmp_path / "exercises" / "07_extra.ipynb")
    problems = release.differences(tmp_path)
    assert problems[0].startswith(f"stale: exercises/{names[0]}")
    assert f"missing: exercises/{names[1]}" in problems
    assert "no solution for: exercises/07_extra.ipynb" in problems
    release.write(tmp_path)
    assert release.differences(tmp_path) == ["no solution for: exercises/07_extra.ipynb"]


def test_a_solution_without_markers_is_refused(tmp_path: Path) -> None:
    (tmp_path / "solutions").mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("def f():\n    return 1")])
    nbformat.write(nb, tmp_path / "solutions" / "01_x.ipynb")
    with pytest.raises(MarkerError, match="give the answers away"):
        release.build(tmp_path)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("bundle") / "streaming-with-claude"
    assert release.main(["--student", str(dest)]) == 0
    return dest


def test_bundle_has_what_learners_need_and_nothing_else(bundle: Path) -> None:
    assert (bundle / "notebooks" / "00_start_here.ipynb").exists()
    assert sorted(p.name for p in (bundle / "exercises").glob("*.ipynb")) == [p.name for p in SOLUTIONS]
    for kept in [
        "README.md",
        "requirements.txt",
        "pyproject.toml",
        "course",
        ".env.example",
        ".gitignore",
        "LICENSE",
        "runtime.txt",
        "course_utils/selfcheck.py",
        "course_utils/checks/ex01.py",
        "course_utils/simulator/corpus.json",
    ]:
        assert (bundle / kept).exists(), kept
    for left_out in ["solutions", "tests", "instructors", ".git", ".venv", "requirements-dev.txt", "tools", "docs"]:
        assert not (bundle / left_out).exists(), left_out
    assert os.access(bundle / "course", os.X_OK)
    text = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in bundle.rglob("*") if p.is_file())
    assert BEGIN not in text and "__pycache__" not in {p.name for p in bundle.rglob("*")}


def test_bundle_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    assert release.main(["--student", str(tmp_path)]) == 1


def test_bundle_imports_and_its_self_checks_run(bundle: Path) -> None:
    script = (
        "import course_utils, json, pathlib, sys\n"
        "from course_utils.checks import exercise\n"
        "from course_utils.selfcheck import check\n"
        "assert pathlib.Path(course_utils.__file__).is_relative_to(sys.argv[1]), course_utils.__file__\n"
        "for n in ('01', '02', '03', '04', '05', '06', '07', '08'):\n"
        "    assert not any(c.hidden for c in exercise(n).checks)\n"
        "def collect_text(events):\n"
        "    raise NotImplementedError\n"
        "check('01.1', collect_text)\n"
        "check('01.1', lambda events: ''.join(e.delta.text for e in events if e.type == 'content_block_delta'"
        " and e.delta.type == 'text_delta'))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(bundle), "COURSE_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(bundle)], cwd=bundle, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("⏳ 01.1 collect_text: not written yet")
    assert done.stdout.splitlines()[1].startswith("✅ 01.1 collect_text")


def test_bundle_builds_as_a_package_without_instructor_files(bundle: Path, tmp_path: Path) -> None:
    # As `pip install -r requirements.txt` does for the bundle's `-e .`: an isolated build (setuptools from PyPI).
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(tmp_path), str(bundle)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "course_utils/selfcheck.py" in names and "course_utils/simulator/corpus.json" in names
    assert not [n for n in names if n.startswith("course_instructors/")]
    assert not [n for n in names if n.startswith(("course_utils/grade/", "course_utils/checks/hidden/"))]


def test_bundle_carries_what_binder_reads_and_a_badge_opening_lesson_00(bundle: Path) -> None:
    assert (bundle / "runtime.txt").read_text() == "python-3.11\n"  # repo2docker's Python: the one CI tests
    assert "-e .[lab]" in (bundle / "requirements.txt").read_text().splitlines()  # repo2docker installs the pins
    assert ".env" in (bundle / ".gitignore").read_text().split()
    readme = (bundle / "README.md").read_text()
    title, blank, badge = readme.splitlines()[:3]
    assert title == "# Streaming with Claude" and blank == ""
    assert badge == (
        "[![Launch on Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/OWNER/REPO/"
        "HEAD?labpath=notebooks%2F00_start_here.ipynb)"
    )
    assert "replace `OWNER/REPO`" in readme
    assert "(docs/instructors.md)" not in readme  # the bundle has no docs/


def test_the_binder_badge_names_the_repository_given(tmp_path: Path) -> None:
    assert (
        release.binder_url("someone/course")
        == "https://mybinder.org/v2/gh/someone/course/HEAD?labpath=notebooks%2F00_start_here.ipynb"
    )
    readme = release.learners_readme("# T\nSee [the docs](docs/instructors.md).\n", "someone/course")
    assert readme.startswith("# T\n\n[![Launch on Binder]") and "v2/gh/someone/course/" in readme
    assert "replace" not in readme and "the docs (in the instructors' repository)" in readme
