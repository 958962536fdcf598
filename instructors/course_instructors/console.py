"""The checkout's `course` command: the learners' commands, plus `release` and `grade` (`course-instructors` too)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from course_utils.console import _module
from course_utils.console import main as learners_main

USAGE = """Instructors (this checkout; the learners' package has neither):
  release [--check | --student DIR | --nbgrader DIR | --gradescope DIR]
  grade SUBMISSION... [--jobs N]

"""
COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "release": _module("course_instructors.release"),
    "grade": _module("course_instructors.grade"),
}


def main(argv: list[str] | None = None) -> int:
    """Dispatch `course COMMAND ARGS...` with the instructors' commands added."""
    return learners_main(argv, commands=COMMANDS, more_usage=USAGE)


if __name__ == "__main__":
    sys.exit(main())
