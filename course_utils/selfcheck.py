"""Instant feedback in an exercise notebook: run a task's public checks on your code.

    from course_utils.selfcheck import check
    check("01.1", collect_text)

It prints one line when everything passes, and what to fix when something does not. The checks use their own
simulator (pacing off unless timing is the point), so your experiments in other cells never disturb them.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any

from .checks import exercise, run_check
from .checks.base import Outcome

if TYPE_CHECKING:
    from .simulator import Simulator

__all__ = ["check"]

_simulator: "Simulator | None" = None
_lock = threading.Lock()


def _private_simulator() -> "Simulator":
    """The self-checks' own simulator, started on first use (not the one `setup()` gives your cells)."""
    global _simulator
    with _lock:
        if _simulator is None:
            from .simulator import Simulator

            _simulator = Simulator(speed=0).start()
        return _simulator


def check(task_id: str, answer: Any = None) -> None:
    """Run the public checks of task `task_id` ("01.1") on your `answer` (default: the task's name in your notebook)."""
    exercise_id = task_id.partition(".")[0]
    checks = exercise(exercise_id)
    if task_id not in checks.tasks:
        print(f"There is no task {task_id!r}; tasks of exercise {exercise_id}: {', '.join(checks.tasks)}.")
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
    print(report(task_id, task.name, outcomes))


def report(task_id: str, name: str, outcomes: list[Outcome]) -> str:
    """The self-check's printout: one line on success, the failures (with their messages) otherwise."""
    head = f"{task_id} {name}"
    passed = sum(o.passed for o in outcomes)
    last = outcomes[-1]
    if last.kind == "not_written":
        return (f"⏳ {head}: not written yet (it still raises NotImplementedError). Write it, run its cell, then run "
                "this check again.")
    if last.kind in {"missing", "forbidden", "exit"}:
        return f"❌ {head}: {last.message}"
    if passed == len(outcomes):
        return f"✅ {head}: " + ("its check passed." if passed == 1 else f"all {passed} checks passed.")
    lines = [f"❌ {head}: {passed} of {len(outcomes)} checks passed."]
    lines += [f"   ✗ {o.title}: {o.message}" for o in outcomes if not o.passed]
    return "\n".join(lines)
