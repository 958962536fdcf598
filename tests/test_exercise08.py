"""Exercise 08's checks, without a kernel: the solution passes every one (public and hidden), the generated exercise
is "not written" everywhere, and the usual mistakes fail the check meant for them with a message that says why.

The learner's names come from the notebooks themselves: the cell of shared definitions and each task's cell, run
with `course.local_simulator()` answered by the suite's simulator (the demos, which start servers, are left out).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nbformat
import pytest

from course_instructors.hidden_checks import with_hidden
from course_utils.checks import run_check
from course_utils.simulator import Simulator

ROOT = Path(__file__).resolve().parents[1]
NAME = "08_deploying_the_endpoint.ipynb"
EXERCISE = with_hidden("08")


def names_of(path: Path, sim: Simulator, patches: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    """The names a learner's notebook defines: its shared cell and its task cells, with `patches` applied."""
    namespace: dict[str, Any] = {"__name__": "__main__", "course": SimpleNamespace(local_simulator=lambda: sim)}
    cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    wanted = [
        s for s in cells if "class ChatRefused" in s or "raise NotImplementedError" in s or "### BEGIN SOLUTION" in s
    ]
    assert len(wanted) == 5, "the shared cell and four task cells"
    applied, speed = set(), sim.speed
    for source in wanted:
        for old, new in patches:
            if old in source:
                source = source.replace(old, new)
                applied.add(old)
        exec(compile(source, str(path), "exec"), namespace)  # noqa: S102 - the course's own notebook
    sim.speed = speed  # the shared cell turns pacing off on the suite's simulator
    assert applied == {old for old, _ in patches}, "a mistake no longer matches the solution's code"
    return namespace


def outcomes(namespace: dict[str, Any], sim: Simulator, only: str | None = None) -> dict[str, Any]:
    """Each check's outcome by key (only those of task or check `only`, if given)."""
    speed = sim.speed
    try:
        return {
            c.key: run_check(c, EXERCISE.tasks[c.task], namespace, sim, capture=2000)
            for c in EXERCISE.checks
            if only is None or only in (c.task, c.key)
        }
    finally:
        sim.speed = speed


def test_the_solution_passes_every_check(sim: Simulator) -> None:
    results = outcomes(names_of(ROOT / "solutions" / NAME, sim), sim)
    assert len(results) == 26 and any(c.hidden for c in EXERCISE.checks)
    assert {k: o.message for k, o in results.items() if not o.passed} == {}


def test_the_exercise_is_not_written_anywhere(sim: Simulator) -> None:
    results = outcomes(names_of(ROOT / "exercises" / NAME, sim), sim)
    assert {o.kind for o in results.values()} == {"not_written"}


MISTAKES = [
    (
        "a bearer header without a token",
        "08.1/unauthorized",
        "send the header only when there is a token",
        [('{"authorization": f"Bearer {token}"} if token is not None else {}', '{"authorization": f"Bearer {token}"}')],
    ),
    (
        "retry_after left as text",
        "08.1/rate_limited",
        "retry_after should be an int",
        [('int(response.headers["retry-after"])', 'response.headers["retry-after"]')],
    ),
    (
        "raise_for_status instead of the course's errors",
        "08.1/unauthorized",
        "raise the course's classes instead",
        [
            (
                "    if response.status_code != 200:\n        error",
                "    response.raise_for_status()\n    if response.status_code != 200:\n        error",
            )
        ],
    ),
    (
        "an in-band error ignored",
        "08.1/quota_cut",
        "the text alone hides that the answer was cut",
        [('raise AnswerCut("".join(text), data["type"], data["message"])\n    return', "pass\n    return")],
    ),
    (
        "a refused request that costs allowance",
        "08.2/burst",
        "a refused request costs nothing",
        [("return tat, max(1, math.ceil(ahead - 60.0))", "return tat + interval, max(1, math.ceil(ahead - 60.0))")],
    ),
    (
        "no floating-point tolerance",
        "08.2/floating_point",
        "it should pass",
        [("if ahead > 60.0 + 1e-9:", "if ahead > 60.0:")],
    ),
    (
        "idle time banked",
        "08.2/idle_banks_nothing",
        "max(tat, now) + interval",
        [("    tat = max(tat, now)\n    ahead", "    ahead")],
    ),
    (
        "a failed turn stored",
        "08.3/failed_not_stored",
        "store a turn only once its stream has completed",
        [
            (
                "        answer = stream.get_final_text()  # raises if the stream fails: nothing below runs",
                "        try:\n            answer = stream.get_final_text()\n        except Exception:\n"
                "            store[conversation] = [*history, turn]\n            raise",
            )
        ],
    ),
    (
        "the page's prompt accepted",
        "08.3/forged_refused",
        "refuse it with ValueError('system: ...')",
        [('if key not in ("conversation_id", "message"):', 'if key not in ("conversation_id", "message", "system"):')],
    ),
    (
        "a bound that starts with the assistant",
        "08.3/bounded_history",
        "must still start with a user turn",
        [('    while turns and turns[0]["role"] != "user":\n        turns = turns[1:]\n', "")],
    ),
    (
        "a repeated event kept twice",
        "08.4/repeats_skipped",
        "an event kept twice",
        [
            (
                "                if number <= last_number:  # sent again after a resume: already kept\n"
                "                    continue\n",
                "",
            )
        ],
    ),
    (
        "a connection that ends early taken for the end",
        "08.4/other_cuts",
        "the answer is not finished",
        [
            (
                """            error: Exception = httpx.RemoteProtocolError("the answer's stream ended before done or error")""",  # noqa: E501
                '            return "".join(text)',
            )
        ],
    ),
    (
        "never giving up",
        "08.4/gives_up",
        "give up after `max_drops`",
        [("        if fruitless >= max_drops:\n            raise error", "        pass")],
    ),
    (
        "resuming from the start",
        "08.4/two_drops",
        "the calls of open_events",
        [("for event in open_events(last_id):", "for event in open_events(None):")],
    ),
]


@pytest.mark.parametrize(("mistake", "key", "says", "patches"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_a_usual_mistake_fails_its_check_saying_why(
    sim: Simulator, mistake: str, key: str, says: str, patches: list[tuple[str, str]]
) -> None:
    outcome = outcomes(names_of(ROOT / "solutions" / NAME, sim, tuple(patches)), sim, only=key)[key]
    assert not outcome.passed and says in outcome.message, outcome.message
