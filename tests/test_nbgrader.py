"""nbgrader accepts the course: `release --nbgrader` writes valid cell metadata, self-checks raise under nbgrader so a
blank submission scores zero, and nbgrader itself generates, autogrades and feeds back (end to end, in a temp dir)."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_instructors import release
from course_instructors.hidden_checks import with_hidden
from course_instructors.release import BEGIN
from course_utils import selfcheck

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
nbgrader = pytest.importorskip("nbgrader", reason="nbgrader is pinned in requirements-dev.txt")
from nbgrader.nbgraderformat import MetadataValidator  # noqa: E402


@pytest.fixture(scope="module")
def course_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the solutions with their exercises regenerated: the release tool's input, whatever exercises/ holds."""
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(ROOT / "solutions", root / "solutions")
    release.write(root)
    return root


@pytest.fixture(scope="module")
def course(course_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("nbgrader") / "course"
    written = release.nbgrader_course(dest, course_root)
    assert [p.name for p in written] == [p.name for p in sorted((course_root / "solutions").glob("*.ipynb"))]
    return dest


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.name)
def test_the_source_notebooks_carry_metadata_nbgrader_validates(course: Path, solution: Path) -> None:
    nb = nbformat.read(course / "source" / solution.stem / solution.name, as_version=4)
    MetadataValidator().validate_nb(nb)  # raises on what generate_assignment would refuse
    marks = [c.metadata.get("nbgrader") for c in nb.cells]
    ids = [m["grade_id"] for m in marks if m]
    assert len(ids) == len(set(ids))
    for cell, mark in zip(nb.cells, marks, strict=True):
        if BEGIN in cell.source:  # "Solution region detected in a non-solution cell" no more
            assert mark and mark["solution"] and not mark["locked"] and not mark["grade"]
    tests = [(c, m) for c, m in zip(nb.cells, marks, strict=True) if m and m["grade"]]
    points = release.task_points(solution.name[:2])
    assert sorted(m["grade_id"] for _, m in tests) == sorted(f"check-{t.replace('.', '_')}" for t in points)
    for cell, mark in tests:
        task = mark["grade_id"].removeprefix("check-").replace("_", ".")
        assert mark["locked"] and mark["points"] == points[task] > 0
        assert f'check("{task}"' in cell.source and "strict=True" in cell.source
        assert "### BEGIN HIDDEN TESTS" in cell.source and "checks=with_hidden(" in cell.source
    assert all(m and m["locked"] for c, m in zip(nb.cells, marks, strict=True) if c.cell_type == "markdown")


def test_the_configuration_gives_checks_time_and_the_course_stub(course: Path) -> None:
    text = (course / "nbgrader_config.py").read_text()
    assert "c.Execute.timeout = 300" in text and "raise NotImplementedError" in text
    compile(text, "nbgrader_config.py", "exec")


def test_a_self_check_cell_that_holds_more_than_the_check_is_refused() -> None:
    nb = nbformat.read(SOLUTIONS[0], as_version=4)
    cell = next(c for c in nb.cells if c.source.startswith("check("))
    cell.source = "x = 1\n" + cell.source
    with pytest.raises(release.MarkerError, match="exactly one check"):
        release.nbgrader_source(nb, SOLUTIONS[0].name[:2])


def collect_text(events):  # a blank answer, as the exercise gives it
    raise NotImplementedError


def test_check_raises_on_failure_only_when_strict(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert selfcheck.check("01.1", collect_text) is None  # a learner's notebook: it says what to do, no traceback
    assert "not written yet" in capsys.readouterr().out
    with pytest.raises(selfcheck.ChecksFailed, match="01.1 collect_text") as raised:
        selfcheck.check("01.1", collect_text, strict=True)
    assert isinstance(raised.value, AssertionError)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")  # what nbgrader sets while it grades
    with pytest.raises(AssertionError):
        selfcheck.check("01.1", lambda events: "".join(e.delta.text for e in events if e.type == "content_block_delta"))
    with pytest.raises(AssertionError, match="no task"):
        selfcheck.check("01.9", collect_text)
    capsys.readouterr()

    def right(events: list) -> str:
        return "".join(e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta")

    selfcheck.check("01.1", right)  # passing: no exception, one line
    selfcheck.check("01.1", right, checks=with_hidden("01"))
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "✅ 01.1 collect_text: all 2 checks passed." and out[1].startswith("✅") and "4 checks" in out[1]


def nbgrader_cmd(course: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run nbgrader in the course folder, as an instructor would (its alembic must be on PATH)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("COURSE_OFFLINE", None)  # no key either: the course is offline anyway
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0 and "[ERROR]" not in done.stdout + done.stderr, (done.stdout + done.stderr)[-4000:]
    return done


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_nbgrader_generates_autogrades_and_feeds_back(course: Path) -> None:
    # Exercise 02 (the SSE parser): its checks hardly depend on timing, so a loaded machine cannot fail the solution.
    assignment = "02_sse_events"
    nbgrader_cmd(course, "generate_assignment", assignment)
    released = course / "release" / assignment / f"{assignment}.ipynb"
    text = released.read_text()
    assert "### BEGIN HIDDEN TESTS" not in text and BEGIN not in text and "raise NotImplementedError" in text
    for student, source in {
        "solution": course / "source" / assignment / f"{assignment}.ipynb",
        "blank": released,
    }.items():
        (course / "submitted" / student / assignment).mkdir(parents=True)
        shutil.copy(source, course / "submitted" / student / assignment / f"{assignment}.ipynb")
    nbgrader_cmd(course, "autograde", assignment)
    nbgrader_cmd(course, "generate_feedback", assignment)
    nbgrader_cmd(course, "export", "--to", "grades.csv")
    rows = {row["student_id"]: row for row in csv.DictReader((course / "grades.csv").open())}
    total = sum(release.task_points("02").values())
    assert float(rows["solution"]["max_score"]) == total
    assert float(rows["solution"]["score"]) == total, rows
    assert float(rows["blank"]["score"]) == 0.0, rows
    for student in ("solution", "blank"):
        assert list((course / "feedback" / student / assignment).glob("*.html")), student
