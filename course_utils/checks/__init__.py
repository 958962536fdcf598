"""The exercises' checks, kept outside the notebooks.

`exNN.py` holds exercise NN's tasks and its public checks (they also power the learners' self-check cells). The
checks only the grader runs live in the instructors' package (`course_instructors.hidden_checks`), which adds them
with `exercise(id, extra=...)`: this package never imports it.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .base import Check, Outcome, Task, checks_in, expect, expect_equal, task_check
from .env import Env
from .run import run_check

__all__ = [
    "Check",
    "Env",
    "Exercise",
    "Outcome",
    "Task",
    "checks_in",
    "task_check",
    "exercise",
    "exercises",
    "expect",
    "expect_equal",
    "run_check",
]


@dataclass(frozen=True)
class Exercise:
    """One exercise notebook's tasks and checks (public first, then hidden, task by task)."""

    id: str
    tasks: dict[str, Task]
    checks: list[Check]

    def checks_for(self, task: str) -> list[Check]:
        """The checks of one task, in order."""
        return [c for c in self.checks if c.task == task]


def exercises() -> list[str]:
    """The exercise ids that have checks, e.g. ["01", "02", ...]."""
    return sorted(p.stem[2:] for p in Path(__file__).parent.glob("ex[0-9][0-9].py"))


def exercise(exercise_id: str, *, extra: Sequence[Check] = ()) -> Exercise:
    """Load exercise `exercise_id`'s tasks and public checks, plus `extra` checks (the grader's hidden ones)."""
    public = importlib.import_module(f"{__name__}.ex{exercise_id}")
    tasks = {t.id: t for t in public.TASKS}
    found = checks_in(public) + list(extra)
    order = list(tasks)
    unknown = {c.task for c in found} - set(order)
    if unknown:
        raise ValueError(f"exercise {exercise_id}: checks for undeclared task(s) {sorted(unknown)}")
    found.sort(key=lambda c: order.index(c.task))  # stable: public before hidden within a task
    return Exercise(exercise_id, tasks, found)
