"""Checks only the grader runs: edge cases the self-checks leave to the learner. Not in the learners' bundle.

`hidden_checks/exNN.py` adds to exercise NN's public checks (`course_utils.checks.exNN`), whose helpers it imports.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from course_utils.checks import Check, Exercise, checks_in, exercise

__all__ = ["MissingHiddenChecks", "hidden_checks", "with_hidden"]


class MissingHiddenChecks(LookupError):
    """An exercise without hidden checks: grading it on its public checks alone would give marks for nothing."""


def _module(exercise_id: str) -> ModuleType:
    try:
        return importlib.import_module(f"{__name__}.ex{exercise_id}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.ex{exercise_id}":
            raise
        raise MissingHiddenChecks(f"exercise {exercise_id} has no hidden checks ({__name__}.ex{exercise_id})") from None


def hidden_checks(exercise_id: str) -> list[Check]:
    """Exercise `exercise_id`'s hidden checks, in the order its module defines them."""
    return checks_in(_module(exercise_id))


def with_hidden(exercise_id: str) -> Exercise:
    """Exercise `exercise_id` as the grader runs it: public checks, then hidden ones, task by task."""
    return exercise(exercise_id, extra=hidden_checks(exercise_id))
