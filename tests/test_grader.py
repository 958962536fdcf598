"""The autograder, end to end: real kernels, real checks, the simulator, and submissions that try everything.

Two class runs are shared by the tests (each grades its notebooks two at a time, as `--jobs 2` on two cores):
the solutions and the generated exercises as two learners (full marks and zero), and the adversarial set, graded
against exercise 02 only to keep the suite quick.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from course_instructors.grade import main, read_class
from course_instructors.grade.harness import PREFIX
from course_instructors.grade.runner import exercise_of, is_self_check, verify
from course_instructors.hidden_checks import with_hidden
from course_utils.checks import exercise, exercises

from adversarial.cases import CASES, CELL_TIMEOUT, CHECK_TIMEOUT, EXERCISE, write_cases

ROOT = Path(__file__).resolve().parents[1]
GRADESCOPE_TEST_KEYS = {"name", "score", "max_score", "status", "output", "visibility"}


def _grade(paths: list[Path], out: Path, *extra: str) -> dict[str, dict[str, Any]]:
    code = main([*map(str, paths), "--out", str(out), "--jobs", "2", "--quiet", *extra])
    assert code == 0
    return read_class(out)


@pytest.fixture(scope="module")
def class_of_two(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Any]]]:
    """The solutions and the exercises, graded as two learners."""
    out = tmp_path_factory.mktemp("grades")
    return out, _grade([ROOT / "solutions", ROOT / "exercises"], out)


@pytest.fixture(scope="module")
def adversarial(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Any]]]:
    """Every adversarial submission, graded together as one class."""
    folders = write_cases(tmp_path_factory.mktemp("submissions"))
    out = tmp_path_factory.mktemp("adversarial-grades")
    return out, _grade(
        list(folders.values()), out, "--timeout", str(CELL_TIMEOUT), "--check-timeout", str(CHECK_TIMEOUT)
    )


def _points(results: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """(score, max) per task."""
    points: dict[str, tuple[float, float]] = {}
    for test in results["tests"]:
        got, of = points.get(test["number"], (0.0, 0.0))
        points[test["number"]] = (got + test["score"], of + test["max_score"])
    return points


# -- full marks and zero -----------------------------------------------------------------------------------------------


def test_every_solution_scores_full_marks(class_of_two: tuple[Path, dict]) -> None:
    results = class_of_two[1]["solutions"]
    failed = [(t["name"], t["output"]) for t in results["tests"] if t["status"] != "passed"]
    assert not failed, failed
    assert sorted(results["extra_data"]["exercises"]) == exercises()
    assert results["score"] == results["extra_data"]["max_score"] > 0


def test_every_exercise_scores_zero_without_crashing(class_of_two: tuple[Path, dict]) -> None:
    results = class_of_two[1]["exercises"]
    assert sorted(results["extra_data"]["exercises"]) == exercises()
    assert results["score"] == 0
    for test in results["tests"]:
        assert test["status"] == "failed" and "not written yet" in test["output"], test
    assert not any(info["grader_error"] for info in results["extra_data"]["exercises"].values())


def test_hidden_checks_run_but_are_marked(class_of_two: tuple[Path, dict]) -> None:
    results = class_of_two[1]["solutions"]
    for ex_id in exercises():
        checks = with_hidden(ex_id).checks
        hidden = {c.title for c in checks if c.hidden}
        assert hidden, f"exercise {ex_id} has no hidden checks"
        graded = {t["name"].partition(": ")[2]: t["visibility"] for t in results["tests"] if t["tags"][0] == ex_id}
        assert {graded[title] for title in hidden} == {"after_published"}
        assert len(graded) == len(checks)


def test_results_json_is_gradescopes_format(class_of_two: tuple[Path, dict]) -> None:
    out, by_learner = class_of_two
    for learner, results in by_learner.items():
        on_disk = json.loads((out / learner / "results.json").read_text(encoding="utf-8"))
        assert on_disk == results
        assert isinstance(results["score"], float) and isinstance(results["execution_time"], float)
        assert isinstance(results["output"], str) and results["tests"]
        for test in results["tests"]:
            assert GRADESCOPE_TEST_KEYS <= set(test)
            assert test["status"] in {"passed", "failed"}
            assert test["visibility"] in {"visible", "hidden", "after_published"}
            assert 0 <= test["score"] <= test["max_score"]
        assert results["score"] == pytest.approx(sum(t["score"] for t in results["tests"]))


def test_class_csv_is_a_fold_over_the_results(class_of_two: tuple[Path, dict]) -> None:
    out, by_learner = class_of_two
    rows = list(csv.DictReader(io.StringIO((out / "grades.csv").read_text(encoding="utf-8"))))
    tasks = [t for ex_id in exercises() for t in exercise(ex_id).tasks]
    assert list(rows[0]) == ["learner", *tasks, "total", "max"]
    for row in rows:
        results = by_learner[row["learner"]]
        assert float(row["total"]) == results["score"]
        for task, (got, _) in _points(results).items():
            assert float(row[task]) == got


def test_feedback_says_what_to_fix(class_of_two: tuple[Path, dict]) -> None:
    out, _ = class_of_two
    text = (out / "exercises" / "feedback.md").read_text(encoding="utf-8")
    assert "**Score: 0 /" in text and "What to fix" in text
    assert "not written yet: `collect_text` still raises NotImplementedError" in text
    assert "What to fix" not in (out / "solutions" / "feedback.md").read_text(encoding="utf-8")


# -- adversarial submissions -------------------------------------------------------------------------------------------


def test_the_whole_adversarial_class_is_graded(adversarial: tuple[Path, dict]) -> None:
    assert sorted(adversarial[1]) == sorted(case.name for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_adversarial_submission(adversarial: tuple[Path, dict], case: Any) -> None:
    out, by_learner = adversarial
    results = by_learner[case.name]
    for task, (got, of) in _points(results).items():
        want = case.scores.get(task, "full" if case.on_solution else 0)
        if want == "full":
            assert got == of, f"{task}: {got} of {of}"
        elif want == "partial":
            assert 0 < got < of, f"{task}: {got} of {of}"
        else:
            assert got == want, f"{task}: {got} of {of}"
    feedback = (out / case.name / "feedback.md").read_text(encoding="utf-8")
    assert case.reason in feedback, feedback


def test_adversarial_set_uses_one_exercise() -> None:
    assert {exercise_of(Path(f"x/{EXERCISE}_sse_events.ipynb"))} == {EXERCISE}


# -- the warm pool: fresh kernels, never reused, the same as a cold start ---------------------------------------------

PROBE = """import json as _json, os as _os, sys as _sys, threading as _threading
_json.dump({"pid": _os.getpid(), "parent": _os.getppid(), "group": _os.getpgid(0),
            "seen": getattr(_sys, "_course_probe_was_here", None), "global": globals().get("_course_probe_global"),
            "modules": sorted(m for m in _sys.modules if not m.startswith("_course_grade_")),
            "threads": sorted(t.name for t in _threading.enumerate() if not t.name.startswith("simulator:")),
            "path": _sys.path, "argv": _sys.argv[1:2], "env": sorted(_os.environ),
            "cwd": _os.path.basename(_os.getcwd()),
            "fds": sorted(_os.listdir("/proc/self/fd")), "main": repr(_sys.modules["__main__"]),
            "warnings": [str(f) for f in __import__("warnings").filters],
            "stdio": [repr(_sys.stdin), repr(_sys.__stdout__), repr(_sys.__stderr__)]},
           open(%r, "w"))
_sys._course_probe_was_here = _os.getpid()  # a kernel used again would show these to the next submission
_course_probe_global = _os.getpid()
"""


def _probes(tmp: Path, names: list[str]) -> dict[str, Path]:
    """Exercise 02's solution with a first cell that records what its kernel looks like, then marks the kernel."""
    solution = nbformat.read(ROOT / "solutions" / "02_sse_events.ipynb", as_version=4)
    folders = {}
    for name in names:
        nb = nbformat.from_dict(json.loads(json.dumps(solution)))
        nb.cells.insert(0, nbformat.v4.new_code_cell(PROBE % str(tmp / f"{name}.json")))
        folders[name] = tmp / "submissions" / name
        folders[name].mkdir(parents=True)
        nbformat.write(nb, folders[name] / "02_sse_events.ipynb")
    return folders


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, dict], dict[str, dict], dict[str, Any]]:
    """Four probing submissions graded with the pool (two at a time), and one graded with a cold kernel."""
    tmp = tmp_path_factory.mktemp("probes")
    warm = _probes(tmp, ["p1", "p2", "p3", "p4"])
    cold = _probes(tmp, ["cold"])
    warm_results = _grade(list(warm.values()), tmp / "warm-grades")
    cold_results = _grade(list(cold.values()), tmp / "cold-grades", "--cold")
    seen = {name: json.loads((tmp / f"{name}.json").read_text(encoding="utf-8")) for name in [*warm, *cold]}
    return warm_results, cold_results, seen


def test_a_pooled_kernel_is_never_reused(probed: tuple[dict, dict, dict]) -> None:
    warm_results, _, seen = probed
    warm = [seen[name] for name in ("p1", "p2", "p3", "p4")]
    assert len({s["pid"] for s in warm}) == 4, "two submissions ran in one kernel"
    assert len({s["parent"] for s in warm}) == 4, "two submissions shared a grading worker"
    assert all(s["seen"] is None and s["global"] is None for s in warm), "a submission saw another's marks"
    assert all(s["group"] == s["pid"] for s in warm)  # its own process group: interrupts reach it alone
    for name in ("p1", "p2", "p3", "p4"):
        assert warm_results[name]["score"] == warm_results[name]["extra_data"]["max_score"]


def test_a_pooled_kernel_looks_like_a_cold_one(probed: tuple[dict, dict, dict]) -> None:
    warm_results, cold_results, seen = probed
    cold = seen["cold"]
    assert cold_results["cold"]["score"] == warm_results["p1"]["score"]
    for name in ("p1", "p2", "p3", "p4"):
        for key in ("modules", "threads", "path", "argv", "env", "cwd", "fds", "main", "warnings", "stdio"):
            assert seen[name][key] == cold[key], (
                name,
                key,
                sorted(set(map(str, seen[name][key])) ^ set(map(str, cold[key])))[:20],
            )


def test_the_summary_reports_the_measured_overhead(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main([str(ROOT / "exercises" / "02_sse_events.ipynb"), "--out", str(tmp_path), "--jobs", "1", "--quiet"]) == 0
    )
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("Overhead beyond the notebooks' own cells") and " s per notebook" in line, line


# -- the pieces --------------------------------------------------------------------------------------------------------


def _signed(secret: bytes, nonce: str, body: dict[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True)
    mac = hmac.new(secret, (nonce + "\n" + text).encode(), hashlib.sha256).hexdigest()
    return f"{PREFIX}{mac} {text}"


def test_only_results_signed_for_this_check_are_believed() -> None:
    secret, nonce, key = b"k" * 32, "n1", "01.1/joins_text"
    body = {"key": key, "nonce": nonce, "outcome": {"kind": "passed"}}
    assert verify(_signed(secret, nonce, body), key, nonce, secret)["outcome"] == {"kind": "passed"}
    assert verify(_signed(b"x" * 32, nonce, body), key, nonce, secret) is None  # forged
    assert verify(_signed(secret, "n2", {**body, "nonce": "n2"}), key, nonce, secret) is None  # replayed
    assert verify(_signed(secret, nonce, {**body, "key": "01.2/x"}), key, nonce, secret) is None  # another check
    assert verify(PREFIX + "00" * 32 + " " + json.dumps(body), key, nonce, secret) is None
    assert verify("printed noise\n" + _signed(secret, nonce, body), key, nonce, secret) is not None


@pytest.mark.parametrize(
    ("source", "skipped"),
    [
        ('check("01.1", collect_text)', True),
        ('from course_utils.selfcheck import check\ncheck("02.1", EventParser)  # run me', True),
        ('check("03.2", finish_order);', True),
        ('x = 1\ncheck("01.1", collect_text)', False),
        ("def check(): pass", False),
        ("", False),
    ],
)
def test_self_check_cells_are_recognised(source: str, skipped: bool) -> None:
    assert is_self_check(source) is skipped


def test_a_notebooks_exercise_comes_from_metadata_name_or_content() -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('check("04.2", trim)')])
    assert exercise_of(Path("anything.ipynb"), nb) == "04"
    assert exercise_of(Path("ada/05_error_handling (1).ipynb"), nb) == "05"
    nb.metadata["course"] = {"exercise": "06"}
    assert exercise_of(Path("05_error_handling.ipynb"), nb) == "06"
