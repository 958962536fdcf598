"""The exercises are generated from the solutions, and the bundle learners get is generated from the repository.

    python -m course_utils.release                 # regenerate exercises/ from solutions/
    python -m course_utils.release --check         # exit 1 if exercises/ is out of date (CI runs this)
    python -m course_utils.release --student DIR   # the bundle to hand out: no solutions, no hidden checks, no grader

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
import sys
from pathlib import Path
from typing import Any

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = ("# YOUR CODE HERE", "raise NotImplementedError")
MARKDOWN_STUB = "YOUR ANSWER HERE"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
NOTEBOOK = re.compile(r"^(\d\d)_\w+\.ipynb$")

# What learners get, relative to the repository root; what is left out is the instructor's.
BUNDLE = ["README.md", "requirements.txt", "pyproject.toml", "course", ".env.example", "LICENSE", "notebooks",
          "exercises", "course_utils"]
NOT_IN_BUNDLE = ["course_utils/checks/hidden", "course_utils/grade", "course_utils/release.py"]


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
            changed = sum(1 for line in difflib.unified_diff(old, new, lineterm="", n=0)
                          if line[:1] in "+-" and line[:3] not in {"+++", "---"})
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


def student_bundle(dest: Path, root: Path = ROOT) -> list[Path]:
    """Copy what learners need into `dest` (which must not exist or be empty); returns the top-level entries."""
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} is not empty")
    stale = differences(root)
    if stale:
        raise RuntimeError("exercises/ is out of date; run `python -m course_utils.release` first:\n  " +
                           "\n  ".join(stale))
    dest.mkdir(parents=True, exist_ok=True)
    skip = {(root / p).resolve() for p in NOT_IN_BUNDLE}

    def ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if (Path(folder) / n).resolve() in skip or n in {"__pycache__", ".ipynb_checkpoints"}
                or n.endswith((".pyc", ".egg-info"))}

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
    return copied


def main(argv: list[str] | None = None) -> int:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m course_utils.release", description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="exit 1 if exercises/ differs from what solutions/ gives")
    group.add_argument("--student", type=Path, metavar="DIR", help="write the learners' bundle to DIR")
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = differences()
            if problems:
                print("exercises/ is out of date with solutions/ (run `python -m course_utils.release`):")
                print("\n".join(f"  {p}" for p in problems))
                return 1
            print(f"exercises/ is up to date ({len(build())} notebooks).")
            return 0
        if args.student:
            copied = student_bundle(args.student)
            print(f"Wrote the learners' bundle to {args.student}: {', '.join(p.name for p in copied)} "
                  "(no solutions, no hidden checks, no grader).")
            return 0
        changed = write()
        print(f"Regenerated exercises/: {len(changed)} notebook(s) changed of {len(build())}.")
        return 0
    except (MarkerError, FileExistsError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
