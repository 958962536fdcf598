"""`python -m course_instructors.grade SUBMISSION... [--out DIR] [--csv FILE] [--timeout S] [--jobs N]`

A submission is an exercise notebook, or a folder of them (one learner). Every notebook is graded in its own worker
process and its own fresh kernel, `--jobs` at a time; a worker that dies or overruns is killed and its notebook
scored 0 with the reason, and the rest of the class is still graded.

Workers come from a warm pool (pool.py): while notebooks are graded, the next workers already have their kernels
started, forked from a template that has imported the SDK once. Each is used for one notebook and never again.
`--cold` starts each worker and kernel from nothing instead, as a baseline. The summary reports the measured
overhead per notebook beyond its own cells.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import nbformat

from course_utils.checks import exercises

from . import results as res
from .pool import KernelPool
from .processes import kill_orphan_kernel, kill_tree
from .runner import Job, exercise_of, job_json, kernel_environment


@dataclass(frozen=True)
class Submission:
    """One learner's notebooks, each with the exercise it answers."""

    learner: str
    notebooks: tuple[tuple[Path, str], ...]
    notes: tuple[str, ...] = ()


def find_submissions(paths: list[Path]) -> list[Submission]:
    """Learners from the command line: a folder is one learner, a notebook file is one learner."""
    found: list[Submission] = []
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
            found.append(_submission(path.name, files))
        elif path.suffix == ".ipynb" and path.is_file():
            found.append(_submission(path.stem, [path]))
        else:
            raise SystemExit(f"not a notebook or a folder: {path}")
    names: dict[str, int] = {}
    unique = []
    for sub, path in zip(found, paths, strict=True):
        name = sub.learner if sub.learner not in names else f"{path.resolve().parent.name}-{sub.learner}"
        names[name] = names.get(name, 0) + 1
        if names[name] > 1:
            name = f"{name}-{names[name]}"
        unique.append(replace(sub, learner=_safe(name)))
    return unique


def _submission(learner: str, files: list[Path]) -> Submission:
    known = set(exercises())
    chosen: dict[str, Path] = {}
    notes = []
    for file in files:
        try:
            nb = nbformat.read(file, as_version=4)
        except Exception:
            nb = None
        ex_id = exercise_of(file, nb)
        if ex_id not in known:
            notes.append(f"{file.name}: not an exercise notebook of this course; not graded.")
            continue
        if ex_id in chosen:  # two answers to one exercise: the newest counts
            older, newer = sorted([chosen[ex_id], file], key=lambda p: p.stat().st_mtime)
            notes.append(
                f"{older.name}: another notebook answers exercise {ex_id} ({newer.name}); only the newest was graded."
            )
            file = newer
        chosen[ex_id] = file
    return Submission(learner, tuple((p, e) for e, p in sorted(chosen.items())), tuple(notes))


def _safe(name: str) -> str:
    return re.sub(r"[^\w.@+-]+", "_", name).strip("._") or "learner"


def run_worker(job: Job, limit: float, pool: KernelPool | None = None) -> dict[str, Any]:
    """Grade one notebook in a worker process of its own (from `pool`, with its kernel started, or started now);
    a worker that dies or overruns gives a zero with the reason."""
    if pool is not None:
        return _run_pooled(pool, job, limit)
    with tempfile.TemporaryDirectory(prefix="course-grade-job-") as tmp:
        job_path, result_path = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job = replace(job, pid_file=str(Path(tmp) / "kernel.pid"))
        job_path.write_text(job_json(job), encoding="utf-8")
        # Output to DEVNULL: a submission writing gigabytes to fd 1 must not fill a pipe nobody reads.
        command = [sys.executable, "-m", "course_instructors.grade.runner", str(job_path), str(result_path)]
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=tmp,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=limit)
            reason = f"the grading worker stopped with exit code {code}"
        except subprocess.TimeoutExpired:
            kill_tree(proc.pid)
            proc.wait()
            reason = f"grading took longer than {limit:g} s and was stopped"
        return _collect(job, result_path, reason)


def _run_pooled(pool: KernelPool, job: Job, limit: float) -> dict[str, Any]:
    """The same as a cold worker, with a worker of the pool: it already has its fresh kernel, and dies after this."""
    try:
        worker = pool.take()
    except RuntimeError:  # the pool itself failed (its template was killed...): a cold worker still grades it
        return run_worker(job, limit)
    result_path = worker.folder / "result.json"
    job = replace(job, pid_file=str(worker.folder / "kernel.pid"))
    try:
        code = pool.run(worker, {**json.loads(job_json(job)), "result_path": str(result_path)}, limit)
    except OSError:  # the worker was gone before it got its job (nothing of the submission ran): grade it cold
        kill_tree(worker.pid)
        kill_orphan_kernel(Path(job.pid_file))
        return run_worker(replace(job, pid_file=""), limit)
    if code is None:
        kill_tree(worker.pid)
        pool.wait_exit(worker)
        reason = f"grading took longer than {limit:g} s and was stopped"
    else:
        reason = f"the grading worker stopped with exit code {code}"
    return _collect(job, result_path, reason)


def _collect(job: Job, result_path: Path, reason: str) -> dict[str, Any]:
    """The worker's result once it has ended (its kernel reaped), or a zero saying why there is none."""
    kill_orphan_kernel(Path(job.pid_file))
    try:
        result = json.loads(result_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        result = None
    if result is None or "crash" in result:
        detail = (result or {}).get("crash", "")
        return _failed(job, reason if result is None else "the grader failed on this notebook", detail)
    return result


def _failed(job: Job, reason: str, detail: str = "") -> dict[str, Any]:
    record = res.not_submitted(job.exercise)
    for outcome in record["outcomes"]:
        outcome.update(kind="not_run", message=f"not graded: {reason}.")
    record.update(
        path=job.path, notes=[f"Not graded: {reason}."], grader_error=reason + (f"\n{detail}" if detail else "")
    )
    return record


def grade(
    submissions: list[Submission],
    out: Path,
    *,
    jobs: int,
    cell_timeout: float,
    budget: float,
    check_timeout: float | None = None,
    expected: list[str] | None = None,
    progress: bool = True,
    on_done: Callable[[str, dict[str, Any]], None] | None = None,
    warm: bool = True,
    timings: list[dict[str, float]] | None = None,
    kernels: KernelPool | None = None,
) -> dict[str, dict[str, Any]]:
    """Grade every submission (in parallel), write each learner's results.json and feedback.md, return them all.

    With `warm` (the default), kernels come from a pool that starts each next one while notebooks are graded; each
    is still fresh and used for one notebook only (`kernels`: a pool already started, which this closes).
    `timings` gets, per notebook, its wall time from the moment a worker slot took it up, the time in its own cells
    (learner cells and checks), and the difference: the overhead."""
    from tqdm import tqdm

    work = [
        (
            sub,
            Job(
                path=str(path.resolve()),
                exercise=ex_id,
                cell_timeout=cell_timeout,
                budget=budget,
                check_timeout=check_timeout,
            ),
        )
        for sub in submissions
        for path, ex_id in sub.notebooks
    ]
    expected = expected if expected is not None else sorted({j.exercise for _, j in work})
    graded: dict[str, list[dict[str, Any]]] = {sub.learner: [] for sub in submissions}
    remaining = {sub.learner: len(sub.notebooks) for sub in submissions}
    by_learner: dict[str, dict[str, Any]] = {}
    out.mkdir(parents=True, exist_ok=True)

    def finish(sub: Submission) -> None:
        results = res.learner_results(sub.learner, graded[sub.learner], expected)
        notes = list(sub.notes)
        if notes:
            results["extra_data"]["notes"] = notes
            results["output"] += "\n" + "\n".join(notes)
        res.write_learner(out, sub.learner, results)
        by_learner[sub.learner] = results
        if on_done:
            on_done(sub.learner, results)

    for sub in submissions:
        if not sub.notebooks:
            finish(sub)
    bar = tqdm(
        total=len(work),
        unit="notebook",
        desc=f"grading {len(submissions)} submission(s)",
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    )
    if kernels is None and warm and work:
        kernels = start_pool(jobs)
    if kernels is not None:
        kernels.expect(len(work))

    def timed(job: Job) -> dict[str, Any]:
        began = time.monotonic()
        result = run_worker(job, budget + 120, kernels)
        wall = time.monotonic() - began
        cells = float(result.get("cell_seconds", 0.0))
        if timings is not None:
            timings.append({"wall": wall, "cells": cells, "overhead": max(0.0, wall - cells)})
        return result

    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {pool.submit(timed, job): (sub, job) for sub, job in work}
            for future in as_completed(futures):
                sub, job = futures[future]
                graded[sub.learner].append(future.result())
                remaining[sub.learner] -= 1
                bar.update(1)
                bar.set_postfix_str(f"{sub.learner} {job.exercise}", refresh=False)
                if remaining[sub.learner] == 0:
                    finish(sub)
    finally:
        if kernels is not None:
            kernels.close()
    bar.close()
    return by_learner


def start_pool(jobs: int) -> KernelPool:
    """The warm pool for `jobs` notebooks at a time: as many kernels kept started ahead."""
    return KernelPool(max(1, jobs), kernel_environment(dict(os.environ)))


def overhead_summary(timings: list[dict[str, float]]) -> str:
    """One line: the measured per-notebook overhead beyond the notebooks' own cells (and their checks)."""
    if not timings:
        return "No notebook was run."
    over = sorted(t["overhead"] for t in timings)
    median = statistics.median(over)
    p90 = over[min(len(over) - 1, math.ceil(0.9 * len(over)) - 1)]
    return (
        f"Overhead beyond the notebooks' own cells (and checks): median {median:.2f} s per notebook, p90 "
        f"{p90:.2f} s, max {over[-1]:.2f} s (measured: wall time per notebook minus the time its cells ran)."
    )


def main(argv: list[str] | None = None) -> int:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m course_instructors.grade",
        description=__doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "submissions",
        nargs="+",
        type=Path,
        metavar="SUBMISSION",
        help="an exercise notebook, or a folder of one learner's notebooks",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("grading-output"),
        help="where each learner's results.json and feedback.md go (default: grading-output)",
    )
    parser.add_argument("--csv", type=Path, help="the class's grades as CSV (default: OUT/grades.csv)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per learner cell (default: 30)")
    parser.add_argument(
        "--check-timeout",
        type=float,
        help="a cap on every check's own time limit, in seconds (default: each check's own, 15-30)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=300.0,
        help="wall-clock seconds per notebook, all cells and checks (default: 300)",
    )
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="notebooks graded at once (default: the number of cores)"
    )
    parser.add_argument(
        "--exercises", help="exercise ids every learner owes, e.g. 01,02 (default: those found); a missing one scores 0"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="start each notebook's kernel only when its turn comes, without the warm pool (slower; kept to compare)",
    )
    args = parser.parse_args(argv)

    expected = None
    if args.exercises:
        expected = [e.strip() for e in args.exercises.split(",") if e.strip()]
        unknown = set(expected) - set(exercises())
        if unknown:
            parser.error(f"unknown exercise(s): {', '.join(sorted(unknown))}")
    started = time.monotonic()
    kernels = None if args.cold else start_pool(args.jobs)  # its first kernels start while the notebooks are read
    try:
        submissions = find_submissions(args.submissions)
    except BaseException:
        if kernels is not None:
            kernels.close()
        raise
    timings: list[dict[str, float]] = []
    by_learner = grade(
        submissions,
        args.out,
        jobs=args.jobs,
        cell_timeout=args.timeout,
        budget=args.budget,
        check_timeout=args.check_timeout,
        expected=expected,
        progress=not args.quiet,
        warm=not args.cold,
        timings=timings,
        kernels=kernels,
    )
    seconds = time.monotonic() - started
    csv_path = args.csv or args.out / "grades.csv"
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    csv_path.write_text(res.class_csv(by_learner), encoding="utf-8")

    notebooks = sum(len(s.notebooks) for s in submissions)
    width = max((len(n) for n in by_learner), default=7)
    for learner in sorted(by_learner):
        r = by_learner[learner]
        print(f"{learner:<{width}}  {r['score']:>6g} / {r['extra_data']['max_score']:g}")
    print(
        f"Graded {len(submissions)} submission(s), {notebooks} notebook(s), in {seconds:.1f} s with {args.jobs} "
        f"job(s){' (cold kernels)' if args.cold else ''}. Results: {args.out}/<learner>/results.json and "
        f"feedback.md; grades: {csv_path}"
    )
    if timings:
        print(overhead_summary(timings))
    errors = [
        (learner, ex)
        for learner, r in by_learner.items()
        for ex, info in r["extra_data"]["exercises"].items()
        if info.get("grader_error")
    ]
    for learner, ex in errors:
        print(
            f"warning: {learner} exercise {ex} could not be graded: "
            f"{by_learner[learner]['extra_data']['exercises'][ex]['grader_error'].splitlines()[0]}",
            file=sys.stderr,
        )
    return 0
