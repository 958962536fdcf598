"""The vocabulary of a check: tasks, checks, outcomes, and the failures a check reports.

A *task* is one function (or class) an exercise asks the learner to write, e.g. task "02.1" is `EventParser`.
A *check* is one small test of that task, worth some points, with a visibility in otter's words: `visible` checks
power the learner's self-check cell, `hidden` and `after_published` ones only the grader runs.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .env import Env

Visibility = Literal["visible", "hidden", "after_published"]
Kind = Literal[
    "passed", "failed", "not_written", "missing", "error", "timeout", "exit", "forbidden", "tampered", "not_run"
]


@dataclass(frozen=True)
class Task:
    """One thing the learner writes: its id ("01.1"), the name it must have, a title, and what it may not use."""

    id: str
    name: str
    title: str
    forbid: tuple[str, ...] = ()  # modules whose code must not run inside the learner's code (the course's helpers)


@dataclass(frozen=True)
class Check:
    """One test of a task, run against the learner's code with its own time limit and points."""

    task: str
    key: str  # unique within an exercise, e.g. "01.1/joins_text"
    title: str
    func: Callable[[Env], None]
    points: float = 1.0
    visibility: Visibility = "visible"
    timeout: float = 15.0

    @property
    def hidden(self) -> bool:
        """Whether learners see this check only after grades are published (or never)."""
        return self.visibility != "visible"


@dataclass
class Outcome:
    """What one check concluded: passed or not, the points earned, and a message a learner can act on."""

    task: str
    key: str
    title: str
    kind: Kind
    points: float
    max_points: float
    message: str = ""
    visibility: Visibility = "visible"
    printed: str = ""  # what the learner's code printed while the check ran (grader only, truncated)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True only for a check that passed."""
        return self.kind == "passed"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as the grader's kernel harness sends it back."""
        return {
            "task": self.task,
            "key": self.key,
            "title": self.title,
            "kind": self.kind,
            "points": self.points,
            "max_points": self.max_points,
            "message": self.message,
            "visibility": self.visibility,
            "printed": self.printed,
            "extra": self.extra,
        }


class CheckFailed(AssertionError):
    """The learner's code ran but gave a wrong answer; the message says what was expected."""


class NotWritten(Exception):
    """The learner's function still raises NotImplementedError."""


class Missing(Exception):
    """The name the task asks for is not defined in the learner's notebook."""


class LearnerError(Exception):
    """The learner's code raised an exception; the message names it."""

    def __init__(self, error: BaseException, call: str) -> None:
        self.error = error
        super().__init__(f"{call} raised {type(error).__name__}: {short(str(error), 200)}")


class LearnerExit(Exception):
    """The learner's code called sys.exit() (or raised SystemExit) while being checked."""


class Forbidden(Exception):
    """The learner's code used a helper the task asks them to write themselves."""


class CheckTimeout(BaseException):
    """Raised in the main thread when a check runs past its time limit (BaseException: `except Exception` in the
    learner's code must not swallow it)."""


_repr = reprlib.Repr()
_repr.maxstring = 80
_repr.maxother = 80
_repr.maxlist = 8
_repr.maxdict = 8


def short(value: Any, limit: int = 80) -> str:
    """A bounded repr of a learner's value for a message (strings as-is when short)."""
    if isinstance(value, str) and limit != 80:
        return value if len(value) <= limit else value[: limit - 3] + "..."
    _repr.maxstring = limit
    try:
        return _repr.repr(value)
    except Exception:  # a learner's object whose __repr__ raises
        return f"<{type(value).__name__} object>"


def expect(condition: object, message: str) -> None:
    """Fail the check with `message` unless `condition` holds."""
    if not condition:
        raise CheckFailed(message)


def expect_equal(got: Any, want: Any, what: str) -> None:
    """Fail unless `got == want`, saying what `what` should have been."""
    if got != want:
        raise CheckFailed(f"{what}: expected {short(want)}, got {short(got)}")


def task_check(
    task: str, title: str, *, points: float = 1.0, visibility: Visibility = "visible", timeout: float = 15.0
) -> Callable[[Callable[[Env], None]], Callable[[Env], None]]:
    """Mark a function `f(env)` as a check of `task`; the module's checks are collected in definition order."""

    def mark(func: Callable[[Env], None]) -> Callable[[Env], None]:
        # The check rides on the function itself (typeshed's Callable has no attributes), where the exercise finds it.
        func.__check__ = Check(  # type: ignore[attr-defined]
            task=task,
            key=f"{task}/{func.__name__}",
            title=title,
            func=func,
            points=points,
            visibility=visibility,
            timeout=timeout,
        )
        return func

    return mark


def checks_in(module: Any) -> list[Check]:
    """The checks a module defines, in the order it defines them."""
    return [value.__check__ for value in vars(module).values() if hasattr(value, "__check__")]
