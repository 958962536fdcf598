"""The exercises are generated from the solutions, and the bundle learners get is generated from the repository.

    python -m course_instructors.release                 # regenerate exercises/ from solutions/
    python -m course_instructors.release --check         # exit 1 if exercises/ is out of date (CI runs this)
    python -m course_instructors.release --student DIR   # the learners' bundle: no solutions, hidden checks or grader
    python -m course_instructors.release --nbgrader DIR  # an nbgrader course: source/<assignment>/ with cell metadata
    python -m course_instructors.release --gradescope DIR  # DIR/<assignment>/autograder.zip, one per exercise

In `solutions/NN_name.ipynb`, the code between `### BEGIN SOLUTION` and `### END SOLUTION` (nbgrader's markers)
becomes `raise NotImplementedError` in `exercises/NN_name.ipynb`; outputs, execution counts and volatile metadata
are dropped, so the same solutions always give the same bytes.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import re
import shutil
import stat
import sys
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import nbformat

from .hidden_checks import with_hidden

ROOT = Path(__file__).resolve().parents[2]  # the repository: instructors/course_instructors/release.py
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = ("# YOUR CODE HERE", "raise NotImplementedError")
MARKDOWN_STUB = "YOUR ANSWER HERE"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
NOTEBOOK = re.compile(r"^(\d\d)_\w+\.ipynb$")

# What learners get, relative to the repository root; what is left out is the instructor's.
BUNDLE = [
    "README.md",
    "requirements.txt",
    "pyproject.toml",
    "course",
    ".env.example",
    ".gitignore",
    "LICENSE",
    "notebooks",
    "exercises",
    "course_utils",
]
# Binder (repo2docker) reads runtime.txt for the Python version and requirements.txt for the packages: the Python CI
# tests with, and the learners' pins.
BINDER_RUNTIME = "python-3.11"
LESSON_00 = "notebooks/00_start_here.ipynb"
REPO_PLACEHOLDER = "OWNER/REPO"


class MarkerError(ValueError):
    """Solution markers that do not pair up."""


def strip_solutions(source: str, where: str = "a cell", markdown: bool = False) -> str:
    """Replace each marked solution with the stub, at the marker's indentation."""
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.split("\n"), 1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise MarkerError(f"{where}, line {number}: {BEGIN} inside another solution")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out += [indent + MARKDOWN_STUB] if markdown else [indent + s for s in STUB]
        elif marker == END:
            if not inside:
                raise MarkerError(f"{where}, line {number}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise MarkerError(f"{where}: {BEGIN} is never closed")
    return "\n".join(out)


def exercise_from(solution: Any, exercise_id: str, name: str = "the solution") -> Any:
    """The exercise notebook for a solution notebook: solutions stubbed, outputs and volatile metadata dropped."""
    nb = copy.deepcopy(solution)
    stubbed = 0
    for index, cell in enumerate(nb.cells, 1):
        where = f"{name}, cell {index}"
        cell.metadata = {k: v for k, v in cell.metadata.items() if k == "tags" and v}
        if cell.cell_type == "code":
            new = strip_solutions(cell.source, where)
            stubbed += new != cell.source
            cell.source, cell.outputs, cell.execution_count = new, [], None
        elif cell.cell_type == "markdown":
            cell.source = strip_solutions(cell.source, where, markdown=True)
    if not stubbed:
        raise MarkerError(f"{name}: no {BEGIN} ... {END} block, so the exercise would give the answers away")
    nb.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}, "course": {"exercise": exercise_id}}
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nb


def render(nb: Any) -> str:
    """A notebook's bytes, as written to disk (stable: sorted keys, one-space indent, final newline)."""
    return nbformat.writes(nb, version=4) + "\n"


def build(root: Path = ROOT) -> dict[Path, str]:
    """Every exercise notebook's expected text, keyed by its path."""
    built = {}
    for solution in sorted((root / "solutions").glob("*.ipynb")):
        match = NOTEBOOK.match(solution.name)
        if not match:
            raise MarkerError(f"{solution.name}: solution notebooks are named NN_name.ipynb")
        nb = nbformat.read(solution, as_version=4)
        built[root / "exercises" / solution.name] = render(exercise_from(nb, match.group(1), solution.name))
    return built


def differences(root: Path = ROOT) -> list[str]:
    """What is out of date in exercises/: one line per notebook that is missing, stale or has no solution."""
    built = build(root)
    problems = []
    for path, text in built.items():
        if not path.exists():
            problems.append(f"missing: {path.relative_to(root)}")
        elif path.read_text(encoding="utf-8") != text:
            old, new = path.read_text(encoding="utf-8").splitlines(), text.splitlines()
            changed = sum(
                1
                for line in difflib.unified_diff(old, new, lineterm="", n=0)
                if line[:1] in "+-" and line[:3] not in {"+++", "---"}
            )
            problems.append(f"stale: {path.relative_to(root)} ({changed} line(s) differ)")
    for path in sorted((root / "exercises").glob("*.ipynb")):
        if path not in built:
            problems.append(f"no solution for: {path.relative_to(root)}")
    return problems


def write(root: Path = ROOT) -> list[Path]:
    """Regenerate exercises/; returns the notebooks that changed."""
    changed = []
    (root / "exercises").mkdir(exist_ok=True)
    for path, text in build(root).items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def student_bundle(dest: Path, root: Path = ROOT, repo: str = REPO_PLACEHOLDER) -> list[Path]:
    """Copy what learners need into `dest` (which must not exist or be empty); returns the top-level entries."""
    _ready(dest, root)

    def ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if n in {"__pycache__", ".ipynb_checkpoints"} or n.endswith((".pyc", ".egg-info"))}

    copied = []
    for entry in BUNDLE:
        source = root / entry
        if not source.exists():
            continue
        target = dest / entry
        if source.is_dir():
            shutil.copytree(source, target, ignore=ignore)
        else:
            shutil.copy2(source, target)
        copied.append(target)
    (dest / "runtime.txt").write_text(BINDER_RUNTIME + "\n", encoding="utf-8")
    copied.append(dest / "runtime.txt")
    readme = dest / "README.md"
    if readme.exists():
        readme.write_text(learners_readme(readme.read_text(encoding="utf-8"), repo), encoding="utf-8")
    return copied


def binder_url(repo: str) -> str:
    """The mybinder.org address that builds a GitHub repository and opens lesson 00 in JupyterLab."""
    return f"https://mybinder.org/v2/gh/{repo}/HEAD?labpath={quote(LESSON_00, safe='')}"


def learners_readme(text: str, repo: str = REPO_PLACEHOLDER) -> str:
    """The bundle's README: a Binder badge under the title, and no links to files the bundle leaves out."""
    badge = (
        f"[![Launch on Binder](https://mybinder.org/badge_logo.svg)]({binder_url(repo)})\n\n"
        "Run the course in your browser on Binder (lesson 00 opens; offline, no key needed)"
        + (
            f": replace `{REPO_PLACEHOLDER}` in this link with the GitHub repository you put this folder in."
            if repo == REPO_PLACEHOLDER
            else "."
        )
        + "\n"
    )
    title, _, rest = text.partition("\n")
    rest = re.sub(r"\[([^\]]+)\]\((docs/instructors\.md)\)", r"\1 (in the instructors' repository)", rest)
    return f"{title}\n\n{badge}{rest}"


# -- nbgrader ----------------------------------------------------------------------------------------------------------

NBGRADER_SCHEMA = 3
CHECK_LINE = re.compile(r"""^(\s*)check\(\s*["'](\d\d\.\d+)["']\s*(?:,\s*([\w.]+)\s*)?\)\s*;?\s*(#.*)?$""")
NBGRADER_CONFIG = """# nbgrader's configuration for the Streaming with Claude course (from `course release --nbgrader`).
c = get_config()  # noqa: F821 - nbgrader provides it
c.CourseDirectory.course_id = "streaming-with-claude"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\\nraise NotImplementedError"}
# Each check cell runs a task's checks against a simulator: seconds, not milliseconds.
c.Execute.timeout = 300
c.Execute.interrupt_on_timeout = True
"""


def _ready(dest: Path, root: Path) -> None:
    """Refuse a non-empty destination or stale exercises, then create the destination."""
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} is not empty")
    stale = differences(root)
    if stale:
        raise RuntimeError(
            "exercises/ is out of date; run `python -m course_instructors.release` first:\n  " + "\n  ".join(stale)
        )
    dest.mkdir(parents=True, exist_ok=True)


def task_points(exercise_id: str) -> dict[str, float]:
    """Each task's points: its public and hidden checks added up, as the course's grader counts them."""
    found = with_hidden(exercise_id)
    return {task: sum(c.points for c in found.checks_for(task)) for task in found.tasks}


def nbgrader_source(solution: Any, exercise_id: str, name: str = "the solution") -> Any:
    """A solution notebook as nbgrader's source version: answers marked `solution`, each self-check cell an
    autograded test worth its task's points (hidden checks in nbgrader's hidden-tests block), text locked."""
    nb = exercise_from(solution, exercise_id, name)  # markers validated; outputs and volatile metadata dropped
    points = task_points(exercise_id)
    graded: set[str] = set()
    for index, (cell, source_cell) in enumerate(zip(nb.cells, solution.cells, strict=True), 1):
        cell.source = source_cell.source  # the source version keeps the answers between the markers
        base = {"schema_version": NBGRADER_SCHEMA, "solution": False, "grade": False, "locked": False}
        if BEGIN in cell.source:
            if cell.cell_type != "code":
                raise MarkerError(f"{name}, cell {index}: nbgrader needs answers in code cells")
            cell.metadata["nbgrader"] = {**base, "solution": True, "grade_id": f"answer-{exercise_id}-{index:02d}"}
            continue
        lines = [line for line in cell.source.splitlines() if line.strip()]
        calls = [m for m in map(CHECK_LINE.match, lines) if m]
        if cell.cell_type == "code" and calls:
            if len(calls) != 1 or len(lines) != 1:
                raise MarkerError(f"{name}, cell {index}: a self-check cell holds exactly one check(...) call")
            indent, task, answer = calls[0].group(1), calls[0].group(2), calls[0].group(3)
            if task not in points or task in graded:
                raise MarkerError(f"{name}, cell {index}: task {task} is unknown or checked twice")
            graded.add(task)
            args = f'"{task}"' + (f", {answer}" if answer else "")
            cell.source = "\n".join(
                [
                    f"{indent}check({args}, strict=True)  # raises when a check fails, so this cell scores 0",
                    "### BEGIN HIDDEN TESTS",
                    f"{indent}from course_instructors.hidden_checks import with_hidden",
                    f'{indent}check({args}, strict=True, checks=with_hidden("{exercise_id}"))',
                    "### END HIDDEN TESTS",
                ]
            )
            cell.metadata["nbgrader"] = {
                **base,
                "grade": True,
                "locked": True,
                "points": points[task],
                "grade_id": f"check-{task.replace('.', '_')}",
            }
        elif cell.cell_type == "markdown":
            cell.metadata["nbgrader"] = {**base, "locked": True, "grade_id": f"text-{exercise_id}-{index:02d}"}
    missing = set(points) - graded
    if missing:
        raise MarkerError(f"{name}: no self-check cell for task(s) {', '.join(sorted(missing))}")
    return nb


def nbgrader_course(dest: Path, root: Path = ROOT) -> list[Path]:
    """Write an nbgrader course to `dest`: its config, and `source/<assignment>/<assignment>.ipynb` per exercise."""
    _ready(dest, root)
    (dest / "nbgrader_config.py").write_text(NBGRADER_CONFIG, encoding="utf-8")
    written = []
    for solution in sorted((root / "solutions").glob("*.ipynb")):
        match = NOTEBOOK.match(solution.name)
        if not match:
            raise MarkerError(f"{solution.name}: solution notebooks are named NN_name.ipynb")
        folder = dest / "source" / solution.stem
        folder.mkdir(parents=True)
        nb = nbgrader_source(nbformat.read(solution, as_version=4), match.group(1), solution.name)
        (folder / solution.name).write_text(render(nb), encoding="utf-8")
        written.append(folder / solution.name)
    return written


# -- Gradescope --------------------------------------------------------------------------------------------------------

# The course's own files an autograder needs, hidden checks and grader included; the zip unpacks to /autograder/source.
AUTOGRADER_FILES = ["pyproject.toml", "README.md", "LICENSE", "course_utils", "instructors"]
SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder image: Python 3.11 and the course's pins.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
cd "$ROOT/source"
PY=$(command -v python3.11 || true)
if [ -z "$PY" ]; then  # Gradescope's Ubuntu images ship another Python: bring 3.11, the one the course is tested on
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if ! apt-get install -y -qq python3.11 python3.11-venv >/dev/null; then
    apt-get install -y -qq software-properties-common >/dev/null
    add-apt-repository -y ppa:deadsnakes/ppa
    apt-get update -qq
    apt-get install -y -qq python3.11 python3.11-venv >/dev/null
  fi
  PY=$(command -v python3.11)
fi
"$PY" -m venv "$ROOT/venv"
# The learners' package and the instructors' one (grader, hidden checks), both from this folder.
"$ROOT/venv/bin/python" -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[grade]" \
  -e ./instructors
cd /
"$ROOT/venv/bin/python" -c "import course_instructors.grade, course_instructors.hidden_checks"
echo "autograder ready"
"""
RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this once per submission. Whatever happens it leaves $ROOT/results/results.json: the grader's, or
# a fallback scoring 0 that says why grading failed.
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
EXERCISE="@EXERCISE@"
PY="${COURSE_PYTHON:-$ROOT/venv/bin/python}"
RESULTS="$ROOT/results/results.json"
mkdir -p "$ROOT/results" "$ROOT/submission"
OUT=$(mktemp -d)
start=$(date +%s)
cd "$ROOT/source"
# The checks and the grader come from this zip's copy, whatever else the Python has installed.
COURSE_OFFLINE=1 PYTHONPATH="$ROOT/source:$ROOT/source/instructors" "$PY" -m course_instructors.grade \
  "$ROOT/submission" --out "$OUT" --exercises "$EXERCISE" --jobs 2 --quiet >"$OUT/log.txt" 2>&1
status=$?
seconds=$(( $(date +%s) - start ))
if ! "$PY" finish_gradescope.py "$OUT" "$RESULTS" "$status" "$seconds" 2>>"$OUT/log.txt"; then
  reason=$(tail -c 1200 "$OUT/log.txt" 2>/dev/null | tr -d '\000-\010\013-\037"\\' | tr '\n\t' '  ')
  why="The autograder could not grade this submission (exit status %d): %s"
  printf '{"score": 0, "execution_time": %d, "output": "'"$why"'", "tests": []}\n' "$seconds" "$status" "$reason" \
    >"$RESULTS"
fi
exit 0
"""
FINISH_GRADESCOPE = '''"""Put the one learner's results.json where Gradescope reads it, in whole seconds."""

import json
import sys
from pathlib import Path

out, dest, status, seconds = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
found = sorted(out.glob("*/results.json"))
if status != 0 or len(found) != 1:
    raise SystemExit(f"grader exit status {status}, {len(found)} result file(s)")
results = json.loads(found[0].read_text(encoding="utf-8"))
results["execution_time"] = seconds  # Gradescope's spec: whole seconds
dest.write_text(json.dumps(results, indent=1), encoding="utf-8")
'''


def constraints(root: Path = ROOT) -> str:
    """Every exact pin of the lock files, as a pip constraints file (their `-e` and `-r` lines are no constraints)."""
    lines = []
    for name in ("requirements.txt", "requirements-dev.txt"):
        path = root / name
        if path.exists():
            lines += [line for line in path.read_text(encoding="utf-8").splitlines() if "==" in line]
    return "\n".join(lines) + "\n"


def gradescope_zips(dest: Path, root: Path = ROOT) -> list[Path]:
    """Write `dest/<assignment>/autograder.zip` for every exercise: setup.sh, run_autograder and the course."""
    _ready(dest, root)
    skip = {"__pycache__", ".ipynb_checkpoints"}
    files: list[tuple[Path, str]] = []
    for entry in AUTOGRADER_FILES:
        source = root / entry
        if source.is_file():
            files.append((source, entry))
        elif source.is_dir():
            files += [
                (p, p.relative_to(root).as_posix())
                for p in sorted(source.rglob("*"))
                if p.is_file() and not skip & set(p.parts) and not p.name.endswith(".pyc")
            ]
    made = []
    for solution in sorted((root / "solutions").glob("*.ipynb")):
        match = NOTEBOOK.match(solution.name)
        if not match:
            raise MarkerError(f"{solution.name}: solution notebooks are named NN_name.ipynb")
        (dest / solution.stem).mkdir()
        path = dest / solution.stem / "autograder.zip"
        scripts = {
            "setup.sh": SETUP_SH,
            "run_autograder": RUN_AUTOGRADER.replace("@EXERCISE@", match.group(1)),
            "finish_gradescope.py": FINISH_GRADESCOPE,
            "constraints.txt": constraints(root),
        }
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, text in scripts.items():
                info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
                mode = 0o755 if name in {"setup.sh", "run_autograder"} else 0o644
                info.external_attr, info.compress_type = (stat.S_IFREG | mode) << 16, zipfile.ZIP_DEFLATED
                archive.writestr(info, text)
            for source, name in files:
                archive.write(source, name)
        made.append(path)
    return made


def main(argv: list[str] | None = None) -> int:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m course_instructors.release", description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="exit 1 if exercises/ differs from what solutions/ gives")
    group.add_argument("--student", type=Path, metavar="DIR", help="write the learners' bundle to DIR")
    group.add_argument("--nbgrader", type=Path, metavar="DIR", help="write an nbgrader course (source/) to DIR")
    group.add_argument("--gradescope", type=Path, metavar="DIR", help="write DIR/<assignment>/autograder.zip")
    parser.add_argument(
        "--binder-repo",
        default=REPO_PLACEHOLDER,
        metavar="OWNER/NAME",
        help="the GitHub repository the bundle will live in, for its Binder badge",
    )
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = differences()
            if problems:
                print("exercises/ is out of date with solutions/ (run `python -m course_instructors.release`):")
                print("\n".join(f"  {p}" for p in problems))
                return 1
            print(f"exercises/ is up to date ({len(build())} notebooks).")
            return 0
        if args.nbgrader:
            written = nbgrader_course(args.nbgrader)
            print(
                f"Wrote an nbgrader course to {args.nbgrader}: {len(written)} assignment(s) in source/. Next, from "
                "there: nbgrader generate_assignment ASSIGNMENT"
            )
            return 0
        if args.gradescope:
            made = gradescope_zips(args.gradescope)
            print(f"Wrote {len(made)} Gradescope autograder zip(s) to {args.gradescope}/<assignment>/autograder.zip.")
            return 0
        if args.student:
            copied = student_bundle(args.student, repo=args.binder_repo)
            print(
                f"Wrote the learners' bundle to {args.student}: {', '.join(p.name for p in copied)} "
                "(no solutions, no hidden checks, no grader)."
            )
            return 0
        changed = write()
        print(f"Regenerated exercises/: {len(changed)} notebook(s) changed of {len(build())}.")
        return 0
    except (MarkerError, FileExistsError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
