"""How long the grader takes: one notebook alone, and a class of 30 learners, warm pool against cold.

    .venv/bin/python benchmarks/grading.py                      # one notebook (--jobs 1), then the class (--jobs 2)
    .venv/bin/python benchmarks/grading.py --learners 5 --cold  # a smaller class, and the class again cold too

The class is generated in a temporary folder: each learner hands in every exercise (`--exercises` to choose; the
goal was set with six, 180 notebooks), each notebook chosen
(with a fixed seed) as the full solution, the empty exercise, or partly done (some tasks answered, the others left
as the exercise's stub). Figures come from the grader's own summary (`Graded ... in S s` and its measured overhead
beyond the notebooks' own cells); the goal is 180 notebooks in 6 minutes or less with `--jobs 2` on two cores.
`--json FILE` also writes the figures there.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("full", "empty", "partial")


def partly_done(
    solution: nbformat.NotebookNode, exercise: nbformat.NotebookNode, rng: random.Random
) -> nbformat.NotebookNode:
    """The solution with some of its answered cells put back to the exercise's stubs (at least one of each)."""
    nb = copy.deepcopy(solution)
    answered = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "### BEGIN SOLUTION" in c.source]
    if len(solution.cells) != len(exercise.cells) or len(answered) < 2:
        return nb
    stubbed = rng.sample(answered, rng.randint(1, len(answered) - 1))
    for i in stubbed:
        nb.cells[i] = copy.deepcopy(exercise.cells[i])
    return nb


def make_class(dest: Path, learners: int, exercises: list[str] | None = None, seed: int = 16) -> dict[str, int]:
    """Write `learners` folders of one notebook per exercise; returns how many of each kind were written."""
    rng = random.Random(seed)
    counts = dict.fromkeys(KINDS, 0)
    pairs = [
        (nbformat.read(s, as_version=4), nbformat.read(ROOT / "exercises" / s.name, as_version=4), s.name)
        for s in sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
        if exercises is None or s.name[:2] in exercises
    ]
    for n in range(1, learners + 1):
        folder = dest / f"learner{n:02d}"
        folder.mkdir(parents=True)
        for solution, exercise, name in pairs:
            kind = rng.choice(KINDS)
            counts[kind] += 1
            nb = {"full": solution, "empty": exercise}.get(kind) or partly_done(solution, exercise, rng)
            nbformat.write(nb, folder / name)
    return counts


def grade(submissions: list[Path], out: Path, jobs: int, cold: bool) -> dict[str, float | str]:
    """Run the grader's command line; its own figures, and the command's wall time."""
    cmd = [
        sys.executable,
        "-m",
        "course_instructors.grade",
        *map(str, submissions),
        "--out",
        str(out),
        "--jobs",
        str(jobs),
        "--quiet",
        *(["--cold"] if cold else []),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True)
    wall = time.monotonic() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the grader and every process it (and they) reaped
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    graded = re.search(r"Graded \d+ submission\(s\), (\d+) notebook\(s\), in ([\d.]+) s", proc.stdout)
    over = re.search(r"median ([\d.]+) s per notebook, p90 ([\d.]+) s, max ([\d.]+) s", proc.stdout)
    errors = proc.stderr.count("could not be graded")
    if not graded or not over:
        raise SystemExit(f"unexpected grader output:\n{proc.stdout}\n{proc.stderr}")
    return {
        "mode": "cold" if cold else "warm",
        "jobs": jobs,
        "notebooks": int(graded.group(1)),
        "grader_seconds": float(graded.group(2)),
        "command_seconds": round(wall, 1),
        "overhead_median": float(over.group(1)),
        "overhead_p90": float(over.group(2)),
        "overhead_max": float(over.group(3)),
        "grader_errors": errors,
        "cpu_seconds": round(cpu, 1),
        "load_after": round(os.getloadavg()[0], 2),
    }


def show(label: str, r: dict[str, float | str]) -> None:
    per = float(r["grader_seconds"]) / max(1, int(r["notebooks"]))
    print(
        f"{label:<34} {r['mode']:<4}  --jobs {r['jobs']}  {r['notebooks']:>3} notebook(s) in "
        f"{r['grader_seconds']:7.1f} s ({per:.1f} s each; whole command {r['command_seconds']} s); overhead beyond "
        f"the notebooks' own cells: median {r['overhead_median']:.2f} s, p90 {r['overhead_p90']:.2f} s, "
        f"max {r['overhead_max']:.2f} s; CPU {r['cpu_seconds']} s ({float(r['cpu_seconds']) / per_nb(r):.1f} s per "
        f"notebook); grader errors: {r['grader_errors']}; load average after: {r['load_after']}",
        flush=True,
    )


def per_nb(r: dict[str, float | str]) -> int:
    return max(1, int(r["notebooks"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=30, help="learners in the class (default 30: 180 notebooks)")
    parser.add_argument("--jobs", type=int, default=2, help="--jobs for the class (default 2)")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="also grade the class with cold kernels, as a baseline (the single notebook always is)",
    )
    parser.add_argument("--single", default="02_sse_events.ipynb", help="the solution graded alone with --jobs 1")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--exercises",
        default="01,02,03,04,05,06",
        help="the exercises each learner hands in (default: 01-06, the six the goal was set with)",
    )
    args = parser.parse_args()

    load = os.getloadavg()
    print(f"{platform.node()}: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    runs = []
    with tempfile.TemporaryDirectory(prefix="grading-bench-") as tmp:
        single = ROOT / "solutions" / args.single
        for cold in (False, True):
            r = grade([single], Path(tmp) / f"single-{cold}", 1, cold)
            show(f"one notebook ({args.single})", r)
            runs.append({"what": f"one notebook ({args.single})", **r})
        counts = make_class(Path(tmp) / "class", args.learners, [e.strip() for e in args.exercises.split(",")])
        print(
            f"class: {args.learners} learners, {sum(counts.values())} notebooks "
            f"({', '.join(f'{v} {k}' for k, v in counts.items())})",
            flush=True,
        )
        learners = sorted((Path(tmp) / "class").iterdir())
        for cold in [False, True] if args.cold else [False]:
            r = grade(learners, Path(tmp) / f"class-{cold}", args.jobs, cold)
            show(f"class of {args.learners}", r)
            runs.append({"what": f"class of {args.learners}", "kinds": counts, **r})
    goal = next((r for r in runs if r["what"].startswith("class") and r["mode"] == "warm"), None)
    if goal is not None and goal["notebooks"] == 180:
        print(
            f"goal: 180 notebooks in <= 360 s with --jobs 2: {goal['grader_seconds']:.0f} s, "
            f"{'met' if float(goal['grader_seconds']) <= 360 else 'NOT met'}; overhead median <= 3 s: "
            f"{goal['overhead_median']:.2f} s, {'met' if float(goal['overhead_median']) <= 3 else 'NOT met'}"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    "machine": {"cores": os.cpu_count(), "load_at_start": [round(x, 2) for x in load]},
                    "runs": runs,
                },
                indent=1,
            )
            + "\n",
            encoding="utf-8",
        )
        print(f"written: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
