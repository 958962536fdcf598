"""Running one check: a fresh simulator state, a time limit, and every way the learner's code can go wrong turned
into an outcome with a message a learner can act on."""

from __future__ import annotations

import gc
import io
import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from typing import TYPE_CHECKING, Any

from .base import (
    Check,
    CheckFailed,
    CheckTimeout,
    Forbidden,
    Kind,
    LearnerError,
    LearnerExit,
    Missing,
    NotWritten,
    Outcome,
    Task,
)
from .env import Env

if TYPE_CHECKING:
    from course_utils.simulator import Simulator


def run_check(
    check: Check, task: Task, namespace: Mapping[str, Any], simulator: Simulator, *, capture: int = 0
) -> Outcome:
    """Run one check against the learner's names; `capture` > 0 swallows what their code prints (up to that many
    characters are kept in the outcome), as the grader wants."""
    simulator.reset()
    simulator.speed = 0
    simulator.app.replays.clear()
    env = Env(namespace, simulator, task)
    kind: Kind = "passed"
    message = ""
    printed = _Capped(capture)
    try:
        with _maybe_capture(printed, capture), _no_gc_surprises(), time_limit(check.timeout):
            check.func(env)
    except CheckFailed as exc:
        kind, message = "failed", str(exc)
    except NotWritten:
        kind, message = "not_written", f"not written yet: `{task.name}` still raises NotImplementedError."
    except Missing as exc:
        kind, message = "missing", str(exc)
    except LearnerError as exc:
        kind, message = "error", str(exc)
    except LearnerExit as exc:
        kind, message = "exit", f"{exc}: a function must return its answer, not stop Python."
    except Forbidden as exc:
        kind, message = "forbidden", str(exc)
    except (CheckTimeout, KeyboardInterrupt):
        kind, message = (
            "timeout",
            (
                f"did not finish within {check.timeout:g} s (an endless loop, or waiting for "
                "something that never comes?)."
            ),
        )
    except Exception as exc:  # the learner's result broke the check itself, e.g. a wrong type
        kind, message = "error", f"your result could not be checked: {type(exc).__name__}: {str(exc)[:200]}"
    earned = check.points if kind == "passed" else 0.0
    return Outcome(
        task=check.task,
        key=check.key,
        title=check.title,
        kind=kind,
        points=earned,
        max_points=check.points,
        message=message,
        visibility=check.visibility,
        printed=printed.text,
    )


@contextmanager
def _no_gc_surprises() -> Iterator[None]:
    """No garbage collection during the check: a finalizer of an earlier check's SDK stream, run by the collector
    while the learner's code happens to be on the stack, would look as if their code had used the SDK."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise CheckTimeout in the main thread after `seconds` (no limit off the main thread or without SIGALRM)."""
    usable = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if not usable or seconds <= 0:
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise CheckTimeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class _Capped(io.TextIOBase):
    """A text sink that keeps at most `limit` characters and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._parts: list[str] = []
        self._kept = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        room = self.limit - self._kept
        if room > 0:
            self._parts.append(text[:room])
            self._kept += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    @property
    def text(self) -> str:
        """What was kept, with a note of how much was not."""
        note = f"\n... ({self.dropped:,} more characters not shown)" if self.dropped else ""
        return "".join(self._parts) + note


@contextmanager
def _maybe_capture(sink: _Capped, capture: int) -> Iterator[None]:
    if capture <= 0:
        yield
        return
    with redirect_stdout(sink), redirect_stderr(sink):
        yield
