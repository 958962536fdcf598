"""Adversarial submissions, generated from exercise 02's solution and exercise notebooks by injecting code.

    .venv/bin/python tests/adversarial/cases.py DIR     # write them, one folder per "learner", to grade by hand

Each case says what every task should score ("full" marks, 0, or an exact number of points) and a phrase its
feedback must contain, so a test can grade them all as one class and hold the grader to each outcome.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

ROOT = Path(__file__).resolve().parents[2]
EXERCISE = "02"
NAME = "02_sse_events.ipynb"
TASKS = {"EventParser": "02.1", "accumulate": "02.2", "stream_events": "02.3"}
CELL_TIMEOUT = 5  # seconds per learner cell when these are graded (the endless loop's cell waits this long)
CHECK_TIMEOUT = 5  # seconds per check (exercise 02's checks take well under one)


@dataclass(frozen=True)
class Case:
    """One adversarial submission and what grading it must give."""

    name: str
    build: Callable[[Any, Any], Any]  # (solution notebook, exercise notebook) -> the submission
    scores: dict[str, str | float]  # task -> "full", or points; tasks not listed: "full" if built on the solution
    reason: str  # must appear in the learner's feedback.md
    on_solution: bool = True
    raw: bytes | None = None  # write these bytes instead of a notebook


def _index(nb: Any, name: str) -> int:
    """The code cell defining `name`."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and (f"def {name}(" in cell.source or f"class {name}" in cell.source):
            return i
    raise LookupError(name)


def _setup_index(nb: Any) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "setup()" in c.source)


def insert_after(index_of: Callable[[Any], int], source: str) -> Callable[[Any, Any], Any]:
    """A builder that adds a code cell after the cell `index_of` finds (in the chosen base notebook)."""

    def build(nb: Any) -> Any:
        nb.cells.insert(index_of(nb) + 1, nbformat.v4.new_code_cell(source))
        return nb

    return build


def replace_def(name: str, source: str) -> Callable[[Any], Any]:
    """A builder that replaces the cell defining `name`."""

    def build(nb: Any) -> Any:
        nb.cells[_index(nb, name)].source = source
        return nb

    return build


def delete_def(name: str) -> Callable[[Any], Any]:
    """A builder that deletes the cell defining `name`, as a learner who deleted it by mistake."""

    def build(nb: Any) -> Any:
        del nb.cells[_index(nb, name)]
        return nb

    return build


def delete_cell_with(text: str) -> Callable[[Any], Any]:
    """A builder that deletes the (try-it) code cell containing `text`."""

    def build(nb: Any) -> Any:
        nb.cells = [c for c in nb.cells if not (c.cell_type == "code" and text in c.source)]
        return nb

    return build


def _on(base: str, *steps: Callable[[Any], Any]) -> Callable[[Any, Any], Any]:
    def build(solution: Any, exercise: Any) -> Any:
        nb = copy.deepcopy(solution if base == "solution" else exercise)
        for step in steps:
            nb = step(nb)
        return nb

    return build


WRAPS_COURSE_PARSER = """
from course_utils.sse import SSEParser

class EventParser:
    def __init__(self):
        self.parser = SSEParser(strict_eof=True)

    def feed(self, chunk):
        return [(e.event, e.data) for e in self.parser.feed(chunk)]
"""

PRINTS_FAKES = """
FAKE = ('course-grade/v1 ' + 'ab' * 32 + ' {"key": "%s", "nonce": "0", "outcome": {"kind": "passed", '
        '"points": 1.0, "max_points": 1.0}, "tampering": []}')

class EventParser:
    def feed(self, chunk):
        for key in ["02.1/parses_whole", "02.1/any_boundary", "02.1/split_character"]:
            print(FAKE % key)
        print("✅ 02.1 EventParser: all 3 checks passed.")
        return []

print(FAKE % "02.1/parses_whole")
"""

PATCHES_CHECKS = """
import course_utils.checks.base as base
import course_utils.checks.ex02 as public_checks
import course_utils.checks.run as run

base.expect = lambda *args, **kwargs: None
public_checks.expect_events = lambda *args, **kwargs: None
run.run_check = lambda *args, **kwargs: None

class EventParser:
    def feed(self, chunk):
        return []
"""

ACCUMULATE_TEXT_ONLY = '''
def accumulate(events) -> dict:
    """Half done: text and usage, but tool calls keep an empty input."""
    message = None
    for event in events:
        kind = event.get("type")
        if kind == "message_start":
            message = {**event["message"], "content": [], "usage": dict(event["message"]["usage"])}
        elif kind == "content_block_start":
            message["content"].append(dict(event["content_block"]))
        elif kind == "content_block_delta" and event["delta"]["type"] == "text_delta":
            message["content"][event["index"]]["text"] += event["delta"]["text"]
        elif kind == "message_delta":
            message["stop_reason"] = event["delta"]["stop_reason"]
            message["usage"]["output_tokens"] = event["usage"]["output_tokens"]
    return message
'''

CASES = [
    Case(
        "endless_loop_cell",
        _on("solution", insert_after(_setup_index, "while True:\n    pass")),
        {},
        f"ran longer than {CELL_TIMEOUT} s and was interrupted",
    ),
    Case(
        "endless_loop_in_check",
        _on("solution", replace_def("accumulate", "def accumulate(events):\n    while True:\n        pass")),
        {"02.2": 0},
        f"did not finish within {CHECK_TIMEOUT} s",
    ),
    Case(
        "sys_exit_cell", _on("solution", insert_after(_setup_index, "import sys\nsys.exit(0)")), {}, "raised SystemExit"
    ),
    Case(
        "sys_exit_in_check",
        _on(
            "solution",
            replace_def("stream_events", "import sys\n\ndef stream_events(*args):\n    sys.exit(1)\n    yield {}"),
        ),
        {"02.3": 0},
        "called sys.exit(1)",
    ),
    Case(
        "os_exit",
        _on("solution", insert_after(lambda nb: _index(nb, "EventParser"), "import os\nos._exit(1)")),
        {"02.1": 0, "02.2": 0, "02.3": 0},
        "the kernel died while running code cell",
    ),
    Case(
        "segfault",
        _on("solution", insert_after(lambda nb: _index(nb, "accumulate"), "import ctypes\nctypes.string_at(0)")),
        {"02.1": 0, "02.2": 0, "02.3": 0},
        "the kernel died while running code cell",
    ),
    Case(
        "kernel_dies_in_check",
        _on(
            "solution",
            delete_cell_with("events = list(stream_events("),
            replace_def("accumulate", "import os\n\ndef accumulate(events):\n    os._exit(3)"),
        ),
        {"02.2": 0, "02.3": 0},
        "the kernel died while this check ran your code",
    ),
    Case(
        "kills_grader_worker",
        _on(
            "solution",
            insert_after(
                lambda nb: _index(nb, "accumulate"), "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"
            ),
        ),
        {"02.1": 0, "02.2": 0, "02.3": 0},
        "the grading worker stopped",
    ),
    Case(
        "huge_output",
        _on("solution", insert_after(_setup_index, "for _ in range(500):\n    print('x' * 100_000)")),
        {},
        "printed too much",
    ),
    Case(
        "syntax_error",
        _on("solution", replace_def("accumulate", "def accumulate(events) -> dict\n    return {}")),
        {"02.2": 0},
        "`accumulate` is not defined",
    ),
    Case(
        "missing_function", _on("solution", delete_def("stream_events")), {"02.3": 0}, "`stream_events` is not defined"
    ),
    Case(
        "prints_fake_results",
        _on("exercise", replace_def("EventParser", PRINTS_FAKES)),
        {"02.1": 0, "02.2": 0, "02.3": 0},
        "expected",
        on_solution=False,
    ),
    Case(
        "patches_check_modules",
        _on("exercise", replace_def("EventParser", PATCHES_CHECKS)),
        {"02.1": 0, "02.2": 0, "02.3": 0},
        "the grader uses its own copy of the checks",
        on_solution=False,
    ),
    Case(
        "patches_builtins",
        _on(
            "solution",
            insert_after(_setup_index, "import builtins\nbuiltins.sorted = lambda items, **options: list(items)"),
        ),
        {"02.1": 0, "02.2": 0, "02.3": 0},
        "builtins.sorted was replaced",
    ),
    Case(
        "uses_course_parser",
        _on("exercise", replace_def("EventParser", WRAPS_COURSE_PARSER)),
        {"02.1": 0, "02.2": 0, "02.3": 0},
        "used `course_utils.sse`",
        on_solution=False,
    ),
    Case(
        "partly_right",
        _on("solution", replace_def("accumulate", ACCUMULATE_TEXT_ONLY)),
        {"02.2": "partial"},
        "a tool call: its input JSON put together and parsed",
    ),
    Case(
        "unreadable",
        lambda solution, exercise: None,
        {"02.1": 0, "02.2": 0, "02.3": 0},
        "could not be read",
        raw=b'{"cells": [ this is not JSON',
    ),
]


def write_cases(dest: Path) -> dict[str, Path]:
    """Write every case as `DEST/<case>/02_sse_events.ipynb` (one learner per case); returns the folders."""
    solution = nbformat.read(ROOT / "solutions" / NAME, as_version=4)
    exercise = nbformat.read(ROOT / "exercises" / NAME, as_version=4)
    folders = {}
    for case in CASES:
        folder = dest / case.name
        folder.mkdir(parents=True, exist_ok=True)
        if case.raw is not None:
            (folder / NAME).write_bytes(case.raw)
        else:
            nbformat.write(case.build(solution, exercise), folder / NAME)
        folders[case.name] = folder
    return folders


if __name__ == "__main__":
    for folder in write_cases(Path(sys.argv[1])).values():
        print(folder)
