"""Grading one exercise notebook: run it in a fresh kernel, then run every check as its own cell, and read back only
the results the kernel-side harness signed.

    python -m course_instructors.grade.runner JOB.json RESULT.json      (what each cold worker process runs)

A worker of the warm pool (pool.py) runs the same code with a kernel it started ahead (`start_kernel`, then
`grade_notebook_async(job, warm)`): same kernel manager, arguments, folder and environment, one notebook per kernel.

The learner's cells run with stored outputs discarded, errors allowed, a per-cell time limit (the kernel is
interrupted, then the next cell runs) and a cap on the output kept. Self-check cells are skipped: the grader runs
those checks itself, and the hidden ones too, each with its own time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import math
import os
import re
import secrets
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

import course_utils.checks as checks_package
from course_utils.checks import Exercise

from ..hidden_checks import with_hidden
from .harness import PREFIX

if TYPE_CHECKING:
    from jupyter_client.manager import AsyncKernelManager

PACKAGE = Path(__file__).resolve().parents[1]  # course_instructors/
PUBLIC_CHECKS = Path(checks_package.__file__).resolve().parent  # course_utils/checks/
TIMEOUT_ENAME = "GradingTimeout"
SELF_CHECK_LINE = re.compile(
    r"""^\s*(#.*)?$"""
    r"""|^\s*from\s+course_utils\.selfcheck\s+import\s+[\w\s,]+(#.*)?$"""
    r"""|^\s*import\s+course_utils\.selfcheck(\s+as\s+\w+)?\s*(#.*)?$"""
    r"""|^\s*(\w+\.)?check\(\s*["']\d\d\.\d+["']\s*(,\s*[\w.]+\s*)?\)\s*;?\s*(#.*)?$"""
)
EXERCISE_ID = re.compile(r"(?<!\d)(\d\d)_")


@dataclass
class Job:
    """One notebook to grade and the limits to grade it under."""

    path: str
    exercise: str
    cell_timeout: float = 30.0
    budget: float = 300.0  # wall-clock seconds for the whole notebook, learner cells and checks together
    output_limit: int = 100_000  # characters of output kept per learner cell
    capture: int = 2_000  # characters of what the learner's code prints during a check kept for feedback
    check_timeout: float | None = None  # a cap on every check's own time limit (seconds)
    pid_file: str = ""  # where to note the kernel's process id, so the parent can stop it if this worker dies


@dataclass
class Cell:
    """A cell of the notebook the grader runs, and where it came from."""

    role: str  # "bootstrap", "learner" or "check"
    source: str
    number: int = 0  # learner cells: 1-based position among the submission's code cells
    key: str = ""  # check cells: the check's key
    nonce: str = ""
    timeout: float = 0.0


@dataclass
class Run:
    """What happened while the cells ran."""

    executed: set[int] = field(default_factory=set)
    timed_out: set[int] = field(default_factory=set)
    dropped: dict[int, int] = field(default_factory=dict)  # characters of output not kept, per cell
    died_at: int | None = None
    stuck_at: int | None = None
    out_of_time_at: int | None = None
    failure: str | None = None  # the grader itself could not run the notebook
    cell_seconds: float = 0.0  # wall time spent running the learner's cells and the checks


def exercise_of(path: Path, nb: Any | None = None) -> str | None:
    """The exercise a notebook answers: its metadata, else the `NN_` in its file name, else its self-check calls."""
    meta = (nb or {}).get("metadata", {}).get("course", {}) if nb is not None else {}
    if isinstance(meta, dict) and re.fullmatch(r"\d\d", str(meta.get("exercise", ""))):
        return str(meta["exercise"])
    match = EXERCISE_ID.search(path.name)
    if match:
        return match.group(1)
    if nb is not None:
        sources = "\n".join(str(c.get("source", "")) for c in nb.cells)
        ids = re.findall(r"""check\(\s*["'](\d\d)\.\d+["']""", sources)
        if ids:
            return max(set(ids), key=ids.count)
    return None


def is_self_check(source: str) -> bool:
    """A cell that only runs self-checks: the grader skips it and runs the checks itself."""
    lines = source.splitlines()
    return (
        any(line.strip() for line in lines)
        and all(SELF_CHECK_LINE.match(line) for line in lines)
        and "check(" in source
    )


def plan_cells(nb: Any, checks: Exercise, job: Job, config_path: Path, alias: str) -> list[Cell]:
    """Bootstrap, the learner's code cells (without outputs or self-checks), then one cell per check."""
    boot = (
        "def _course_grade_boot(path):\n"
        "    import importlib.util, json, os, sys\n"
        "    with open(path, encoding='utf-8') as file:\n"
        "        config = json.load(file)\n"
        "    os.remove(path)\n"
        "    spec = importlib.util.spec_from_file_location(config['harness_alias'], config['harness'])\n"
        "    module = importlib.util.module_from_spec(spec)\n"
        "    sys.modules[config['harness_alias']] = module\n"
        "    spec.loader.exec_module(module)\n"
        "    module.install(config)\n"
        f"_course_grade_boot({str(config_path)!r})\n"
        "del _course_grade_boot\n"
    )
    cells = [Cell("bootstrap", boot, timeout=120)]
    number = 0
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        number += 1
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if not source.strip() or is_self_check(source):
            continue
        cells.append(Cell("learner", source, number=number, timeout=job.cell_timeout))
    for check in checks.checks:
        nonce = secrets.token_hex(16)
        source = f"__import__('sys').modules[{alias!r}].run({check.key!r}, {nonce!r})"
        cells.append(Cell("check", source, key=check.key, nonce=nonce, timeout=limit(check, job) + 15))
    return cells


def limit(check: Any, job: Job) -> float:
    """A check's time limit in seconds: its own, or the job's cap if lower."""
    return min(check.timeout, job.check_timeout) if job.check_timeout else check.timeout


class _Client(NotebookClient):
    """nbclient with a cap on the output kept per cell, and a record of timeouts."""

    def __init__(self, nb: Any, plan: list[Cell], run: Run, job: Job, **kwargs: Any) -> None:
        super().__init__(nb, **kwargs)
        self.plan, self.run_state, self.job = plan, run, job
        self._kept: dict[int, int] = {}

    def output(self, outs: list, msg: dict[str, Any], display_id: str | None, cell_index: int) -> Any:
        limit = (
            2_000_000
            if cell_index < len(self.plan) and self.plan[cell_index].role == "check"
            else self.job.output_limit
        )
        content = msg.get("content", {})
        size = _size(content)
        kept = self._kept.get(cell_index, 0)
        if kept + size > limit:
            room = max(0, limit - kept)
            self.run_state.dropped[cell_index] = self.run_state.dropped.get(cell_index, 0) + size - room
            if msg.get("msg_type") != "stream" or room == 0:
                self._kept[cell_index] = limit
                return None
            msg = {**msg, "content": {**content, "text": content.get("text", "")[:room]}}
            size = room
        self._kept[cell_index] = kept + size
        return super().output(outs, msg, display_id, cell_index)


def _size(content: dict[str, Any]) -> int:
    if "text" in content:
        return len(content["text"])
    total = 0
    for value in (content.get("data") or {}).values():
        total += len(value) if isinstance(value, str) else len(json.dumps(value))
    total += sum(len(line) for line in content.get("traceback") or [])
    return total + len(str(content.get("evalue", "")))


def _client_options(job: Job, workdir: Path) -> dict[str, Any]:
    return {
        "timeout": job.cell_timeout,
        "interrupt_on_timeout": True,
        "error_on_timeout": {"ename": TIMEOUT_ENAME, "evalue": "cell timed out", "traceback": []},
        "allow_errors": True,
        "kernel_name": "python3",
        "shutdown_kernel": "immediate",
        "iopub_timeout": 4,
        "resources": {"metadata": {"path": str(workdir)}},
        "log": _quiet_log(),
    }


@dataclass
class WarmKernel:
    """A kernel started ahead of its notebook (the warm pool): its manager, its client, and its folders."""

    km: Any
    kc: Any
    tmp: Any  # a TemporaryDirectory: the kernel runs in tmp/work, as a cold kernel does
    workdir: Path


async def start_kernel(pid_file: Path | None = None) -> WarmKernel:
    """Start a kernel exactly as `_execute` would (same manager, arguments, folder and environment), ready to run."""
    _kernel_environment()
    tmp = tempfile.TemporaryDirectory(prefix="course-grade-")
    workdir = Path(tmp.name) / "work"
    workdir.mkdir()
    starter = NotebookClient(nbformat.v4.new_notebook(), **_client_options(Job(path="", exercise=""), workdir))
    # nbclient's default manager class: its client and its shutdown are awaitable, which its declared type hides.
    km = cast("AsyncKernelManager", starter.create_kernel_manager())
    starter.km = km
    await starter.async_start_new_kernel()
    if pid_file is not None:
        pid_file.write_text(str(getattr(km.provisioner, "pid", "")), encoding="utf-8")
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=starter.startup_timeout)
    except Exception:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)
        tmp.cleanup()
        raise
    kc.allow_stdin = False
    return WarmKernel(km, kc, tmp, workdir)


async def _execute(nb: Any, plan: list[Cell], job: Job, workdir: Path, warm: WarmKernel | None = None) -> Run:
    run = Run()
    client = _Client(nb, plan, run, job, km=warm.km if warm else None, **_client_options(job, workdir))
    if warm is not None:  # nbclient then shuts it down at the end ("immediate"), as a kernel it started itself
        client.owns_km, client.kc = True, warm.kc

    async def reply_hook(cell: Any, cell_index: int, execute_reply: dict[str, Any] | None) -> None:
        content = (execute_reply or {}).get("content", {})
        if content.get("ename") == TIMEOUT_ENAME:
            run.timed_out.add(cell_index)

    client.on_cell_executed = reply_hook
    deadline = time.monotonic() + job.budget
    skipped_tasks: set[str] = set()
    try:
        async with client.async_setup_kernel():
            if job.pid_file and warm is None:
                provisioner = client.km.provisioner if client.km is not None else None  # set up by now
                Path(job.pid_file).write_text(str(getattr(provisioner, "pid", "")), encoding="utf-8")
            for index, cell in enumerate(plan):
                if cell.role == "check" and cell.key.partition("/")[0] in skipped_tasks:
                    continue  # an earlier check of this task hung the kernel until the interrupt: not again
                remaining = deadline - time.monotonic()
                if remaining < 1 and cell.role != "bootstrap":
                    run.out_of_time_at = index
                    break
                client.timeout = max(
                    1, math.ceil(min(cell.timeout, remaining) if cell.role != "bootstrap" else cell.timeout)
                )
                began = time.monotonic()
                try:
                    await client.async_execute_cell(nb.cells[index], index, store_history=cell.role == "learner")
                except DeadKernelError:
                    run.died_at = index
                    break
                finally:
                    if cell.role != "bootstrap":  # the notebook's own cells and its checks; the rest is overhead
                        run.cell_seconds += time.monotonic() - began
                run.executed.add(index)
                if cell.role == "bootstrap" and (_errors(nb.cells[index]) or index in run.timed_out):
                    ename, evalue = (_errors(nb.cells[index]) or [("timeout", "")])[0]
                    run.failure = f"the grading harness did not load ({ename}: {evalue[:200]})"
                    break
                if index in run.timed_out:
                    if cell.role == "check":
                        skipped_tasks.add(cell.key.partition("/")[0])
                    if not await _responsive(client, nb):
                        run.stuck_at = index
                        break
    except Exception as exc:  # the kernel would not start, or nbclient failed: the grader's problem, not the learner's
        run.failure = f"{type(exc).__name__}: {exc}"
    return run


async def _responsive(client: _Client, nb: Any) -> bool:
    """After an interrupt, whether the kernel answers a trivial cell within a few seconds."""
    probe = nbformat.v4.new_code_cell("pass")
    nb.cells.append(probe)
    index = len(nb.cells) - 1
    saved, client.timeout = client.timeout, 10
    try:
        await client.async_execute_cell(probe, index, store_history=False)
    except DeadKernelError:
        return False
    finally:
        client.timeout = saved
    return index not in client.run_state.timed_out


def _quiet_log() -> logging.Logger:
    log = logging.getLogger("course_instructors.grade.nbclient")
    log.setLevel(logging.CRITICAL)
    return log


def grade_notebook(job: Job) -> dict[str, Any]:
    """Grade one notebook in a kernel of its own; always returns a result, whatever the notebook does."""
    return asyncio.run(grade_notebook_async(job))


async def grade_notebook_async(job: Job, warm: WarmKernel | None = None) -> dict[str, Any]:
    """Grade one notebook, in `warm` (a fresh kernel started for it, used for nothing else) or a kernel started now."""
    try:
        return await _grade(job, warm)
    finally:
        if warm is not None:
            if warm.km.has_kernel:  # not run at all (an unreadable notebook): stop it as nbclient would have
                warm.kc.stop_channels()
                with contextlib.suppress(Exception):
                    await warm.km.shutdown_kernel(now=True)
            warm.tmp.cleanup()


async def _grade(job: Job, warm: WarmKernel | None) -> dict[str, Any]:
    started = time.monotonic()
    checks = with_hidden(job.exercise)
    path = Path(job.path)
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:
        return _result(
            job,
            checks,
            started,
            [],
            None,
            None,
            notes=[
                f"The notebook could not be read ({type(exc).__name__}: {str(exc)[:200]}); nothing could be graded."
            ],
            default=("not_run", "the notebook could not be read."),
        )
    secret = secrets.token_bytes(32)
    with contextlib.nullcontext(warm.tmp.name) if warm else tempfile.TemporaryDirectory(prefix="course-grade-") as tmp:
        workdir = Path(tmp) / "work"
        if warm is None:
            workdir.mkdir()
        config_path = Path(tmp) / f"{secrets.token_hex(8)}.json"
        alias = f"_course_grade_{secrets.token_hex(6)}"
        plan = plan_cells(nb, checks, job, config_path, alias)
        config = {
            "secret": secret.hex(),
            "harness": str(PACKAGE / "grade" / "harness.py"),
            "harness_alias": alias,
            "checks_dir": str(PUBLIC_CHECKS),
            "checks_alias": f"{alias}_checks",
            "hidden_dir": str(PACKAGE / "hidden_checks"),
            "hidden_alias": f"{alias}_hidden",
            "exercise": job.exercise,
            "capture": job.capture,
            "check_timeout": job.check_timeout,
        }
        config_path.write_text(json.dumps(config), encoding="utf-8")
        config_path.chmod(0o600)
        run_nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c.source) for c in plan])
        run_nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        _kernel_environment()
        run = await _execute(run_nb, plan, job, workdir, warm)
    return {
        **_result(job, checks, started, plan, run_nb, run, secret=secret),
        "cell_seconds": round(run.cell_seconds, 3),
    }


def kernel_environment(env: Any) -> Any:
    """What kernels inherit: offline, instant replies for the learner's own demos, no real key, quiet warnings."""
    env["COURSE_OFFLINE"] = "1"
    env["COURSE_SIM_SPEED"] = "0"
    env["MPLBACKEND"] = "Agg"
    env.pop("ANTHROPIC_API_KEY", None)
    env.pop("ANTHROPIC_BASE_URL", None)
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env


def _kernel_environment() -> None:
    kernel_environment(os.environ)


def _stdout(cell: Any) -> str:
    return "".join(
        o.get("text", "")
        for o in cell.get("outputs", [])
        if o.get("output_type") == "stream" and o.get("name") == "stdout"
    )


def _errors(cell: Any) -> list[tuple[str, str]]:
    return [
        (o.get("ename", ""), o.get("evalue", "")) for o in cell.get("outputs", []) if o.get("output_type") == "error"
    ]


def verify(text: str, key: str, nonce: str, secret: bytes) -> dict[str, Any] | None:
    """The harness's signed result for this check and nonce in a cell's output, or None if there is none."""
    for line in text.splitlines():
        if not line.startswith(PREFIX):
            continue
        mac, _, body = line[len(PREFIX) :].partition(" ")
        want = hmac.new(secret, f"{nonce}\n{body}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac.encode(), want.encode()):
            continue
        try:
            data = json.loads(body)
        except ValueError:
            continue
        if data.get("key") == key and data.get("nonce") == nonce:
            return data
    return None


def _result(
    job: Job,
    checks: Exercise,
    started: float,
    plan: list[Cell],
    nb: Any,
    run: Run | None,
    *,
    secret: bytes = b"",
    notes: list[str] | None = None,
    default: tuple[str, str] | None = None,
) -> dict[str, Any]:
    notes = list(notes or [])
    tampering: list[str] = []
    outcomes: dict[str, dict[str, Any]] = {}
    index_of = {c.key: i for i, c in enumerate(plan) if c.role == "check"}
    learner = {i: c for i, c in enumerate(plan) if c.role == "learner"}
    for check in checks.checks:
        base = {
            "task": check.task,
            "key": check.key,
            "title": check.title,
            "points": 0.0,
            "max_points": check.points,
            "visibility": check.visibility,
            "printed": "",
            "extra": {},
        }
        if run is None:
            kind, message = default or ("not_run", "not run.")
            outcomes[check.key] = {**base, "kind": kind, "message": message}
            continue
        i = index_of[check.key]
        data = verify(_stdout(nb.cells[i]), check.key, plan[i].nonce, secret) if i in run.executed else None
        if data is not None:
            outcome = {**base, **data["outcome"], "max_points": check.points}
            outcome["points"] = check.points if outcome["kind"] == "passed" else 0.0  # points come from the grader
            outcomes[check.key] = outcome
            tampering += [t for t in data.get("tampering", []) if t not in tampering]
            continue
        kind, message = _why_no_result(i, plan, nb, run, limit(check, job))
        outcomes[check.key] = {**base, "kind": kind, "message": message}
    serious = [t for t in tampering if not t.startswith("ignored:")]
    if serious:
        reason = (
            "not graded: your notebook changed the grader's environment ("
            + "; ".join(serious[:3])
            + "). Write the functions without replacing Python's or the course's own functions."
        )
        for outcome in outcomes.values():
            outcome.update(kind="tampered", points=0.0, message=reason)
    if run is not None:
        notes += _run_notes(plan, nb, run, learner)
    notes += [f"Note: {t[len('ignored: ') :]}." for t in tampering if t.startswith("ignored:")]
    return {
        "path": job.path,
        "exercise": job.exercise,
        "seconds": round(time.monotonic() - started, 2),
        "outcomes": list(outcomes.values()),
        "notes": notes,
        "tampering": serious,
        "grader_error": run.failure if run else None,
    }


def _why_no_result(i: int, plan: list[Cell], nb: Any, run: Run, limit: float) -> tuple[str, str]:
    """Why a check cell brought back no signed result, in words a learner can act on."""

    def where(index: int) -> str:
        cell = plan[index]
        return f"code cell {cell.number} of your notebook" if cell.role == "learner" else "a check"

    if run.failure:
        return "not_run", f"the grader could not run the notebook ({run.failure[:200]})."
    if run.died_at is not None and run.died_at < i:
        return "not_run", (
            f"the kernel died while running {where(run.died_at)} (os._exit, a crash, or out of "
            "memory), so this check could not run."
        )
    if run.died_at == i:
        return "error", "the kernel died while this check ran your code (os._exit, a crash, or out of memory)."
    if run.stuck_at is not None and run.stuck_at < i:
        return "not_run", (
            f"the kernel stopped responding after {where(run.stuck_at)} ran past its time limit and "
            "ignored the interrupt."
        )
    if run.out_of_time_at is not None and run.out_of_time_at <= i:
        return "not_run", "the notebook used up its grading time before this check could run."
    if i in run.timed_out:
        return "timeout", f"did not finish within {limit:g} s (an endless loop, or waiting for something forever?)."
    if i not in run.executed and any(
        plan[j].key.partition("/")[0] == plan[i].key.partition("/")[0] for j in run.timed_out if plan[j].role == "check"
    ):
        return "timeout", "not run: an earlier check of this task did not finish and had to be interrupted."
    errors = _errors(nb.cells[i])
    detail = f" ({errors[0][0]}: {errors[0][1][:120]})" if errors else ""
    return "error", (
        "no result came back from this check" + detail + ". If your notebook changes Python's builtins "
        "or sys.modules, the grader cannot check it."
    )


def _run_notes(plan: list[Cell], nb: Any, run: Run, learner: dict[int, Cell]) -> list[str]:
    """What went wrong in the learner's own cells, for the feedback file."""
    notes = []
    for i, cell in learner.items():
        label = f"Code cell {cell.number} (`{_first_line(cell.source)}`)"
        if run.died_at == i:
            notes.append(f"{label} made the kernel die (os._exit, a crash, or out of memory): nothing after it ran.")
        elif i in run.timed_out:
            notes.append(f"{label} ran longer than {cell.timeout:g} s and was interrupted.")
        elif i in run.executed:
            for ename, evalue in _errors(nb.cells[i]):
                notes.append(f"{label} raised {ename}" + (f": {evalue[:160]}" if evalue else "."))
        if run.dropped.get(i):
            notes.append(f"{label} printed too much: {run.dropped[i]:,} characters of output were not kept.")
        if run.stuck_at == i:
            notes.append(f"{label} ignored the interrupt, so the kernel had to be abandoned.")
    if run.failure:
        notes.append(f"The grader could not run this notebook: {run.failure[:300]}")
    return notes


def _first_line(source: str) -> str:
    line = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
    return line if len(line) <= 50 else line[:47] + "..."


def main(argv: list[str]) -> int:
    """Worker entry point: read a Job from JSON, write the result as JSON."""
    job_path, result_path = Path(argv[0]), Path(argv[1])
    job = Job(**json.loads(job_path.read_text(encoding="utf-8")))
    try:
        result = grade_notebook(job)
    except Exception:
        result = {"path": job.path, "exercise": job.exercise, "crash": traceback.format_exc()[-4000:]}
    result_path.write_text(json.dumps(result), encoding="utf-8")
    return 0


def job_json(job: Job) -> str:
    """A job as the worker reads it."""
    return json.dumps(asdict(job))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
