"""Instant feedback in an exercise notebook: run a task's public checks on your code.

    from course_utils.selfcheck import check
    check("01.1", collect_text)

It prints one line when everything passes, and what to fix when something does not. The checks use their own
simulator (pacing off unless timing is the point), so your experiments in other cells never disturb them.

Under nbgrader (which sets `NBGRADER_EXECUTION` while it validates or autogrades), or with `strict=True`, a check
that does not pass also raises `ChecksFailed`, an AssertionError: nbgrader scores a test cell that raises as zero.
`checks=` runs another set of checks for the task: the grader's, with hidden ones, which only the instructors'
package has (`course_instructors.hidden_checks.with_hidden("01")`).
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING, Any

from .checks import Exercise, exercise, run_check
from .checks.base import Outcome

if TYPE_CHECKING:
    from .simulator import Simulator

__all__ = ["ChecksFailed", "check"]

_simulator: Simulator | None = None
_lock = threading.Lock()


def _private_simulator() -> Simulator:
    """The self-checks' own simulator, started on first use (not the one `setup()` gives your cells)."""
    global _simulator
    with _lock:
        if _simulator is None:
            from .simulator import Simulator

            _simulator = Simulator(speed=0).start()
        return _simulator


class ChecksFailed(AssertionError):
    """A self-check that did not pass, raised in strict mode (nbgrader counts a test cell that raises as failed)."""


def strict_by_default() -> bool:
    """Whether failures raise when `check()` is not told: yes while nbgrader validates or autogrades."""
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def check(task_id: str, answer: Any = None, *, strict: bool | None = None, checks: Exercise | None = None) -> None:
    """Run the public checks of task `task_id` ("01.1") on your `answer` (default: the task's name in your notebook)."""
    strict = strict_by_default() if strict is None else strict
    exercise_id = task_id.partition(".")[0]
    if checks is None:
        try:
            checks = exercise(exercise_id)
        except ModuleNotFoundError:
            checks = None
    if checks is None or task_id not in checks.tasks:
        known = f"; tasks of exercise {exercise_id}: {', '.join(checks.tasks)}" if checks else ""
        message = f"There is no task {task_id!r}{known}."
        if strict:
            raise ChecksFailed(message)
        print(message)
        return
    task = checks.tasks[task_id]
    namespace = dict(sys._getframe(1).f_globals)  # the notebook's names, as the grader sees them
    if answer is not None:
        namespace[task.name] = answer
    outcomes: list[Outcome] = []
    for one in checks.checks_for(task_id):
        outcomes.append(run_check(one, task, namespace, _private_simulator()))
        if outcomes[-1].kind in {"not_written", "missing", "forbidden", "exit"}:
            break  # every other check would say the same
    text = report(task_id, task.name, outcomes)
    print(text)
    if strict and not all(o.passed for o in outcomes):
        raise ChecksFailed(text.splitlines()[0])


def report(task_id: str, name: str, outcomes: list[Outcome]) -> str:
    """The self-check's printout: one line on success, the failures (with their messages) otherwise."""
    head = f"{task_id} {name}"
    passed = sum(o.passed for o in outcomes)
    last = outcomes[-1]
    if last.kind == "not_written":
        return (
            f"⏳ {head}: not written yet (it still raises NotImplementedError). Write it, run its cell, then run "
            "this check again."
        )
    if last.kind in {"missing", "forbidden", "exit"}:
        return f"❌ {head}: {last.message}"
    if passed == len(outcomes):
        return f"✅ {head}: " + ("its check passed." if passed == 1 else f"all {passed} checks passed.")
    lines = [f"❌ {head}: {passed} of {len(outcomes)} checks passed."]
    lines += [f"   ✗ {o.title}: {o.message}" for o in outcomes if not o.passed]
    return "\n".join(lines)
