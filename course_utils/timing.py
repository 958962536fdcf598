"""When a reply's pieces arrive: time to first token, total time, and characters received over time.

    timeline = Timeline("streaming")              # the clock starts: the request is about to be sent
    with client.messages.stream(...) as stream:
        for text in stream.text_stream:
            timeline.record(text)                  # (seconds since the request, this piece)
    timeline.finish()
    print(timeline.summary())                      # streaming: first token after 0.52 s, total 2.31 s, ...

Timelines that share an `origin` share a clock, so several streams can be drawn on one time axis
(`course_utils.display.plot_arrivals`, `plot_lanes`).
"""

from __future__ import annotations

import codecs
import os
import select
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType

__all__ = ["Timeline", "time_output"]


@dataclass
class Timeline:
    """The arrival time of each piece of one reply, in seconds after `origin` (a `time.perf_counter()` value)."""

    label: str = ""
    origin: float = field(default_factory=time.perf_counter, repr=False)
    # When the request went out, on the shared clock: 0 unless the origin was set earlier (another timeline's).
    sent: float = field(init=False)
    arrivals: list[tuple[float, str]] = field(default_factory=list, init=False, repr=False)
    ended: float | None = field(default=None, init=False)
    # `time_output` only: when the program's output closed (it exited), which can be well after its last text.
    exited: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.sent = self.now()

    def now(self) -> float:
        """Seconds since `origin`."""
        return time.perf_counter() - self.origin

    def record(self, text: str) -> None:
        """Note that `text` arrived just now."""
        self.arrivals.append((self.now(), text))

    def finish(self) -> Timeline:
        """Note that the reply ended (or was abandoned) just now; a second call keeps the first time."""
        if self.ended is None:
            self.ended = self.now()
        return self

    def __enter__(self) -> Timeline:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.finish()

    @property
    def first_at(self) -> float | None:
        """When the first non-empty piece arrived, on the shared clock (None if nothing arrived)."""
        return next((t for t, text in self.arrivals if text), None)

    @property
    def ttft(self) -> float | None:
        """Time to first token: seconds from the request to the first visible text."""
        first = self.first_at
        return None if first is None else first - self.sent

    @property
    def total(self) -> float | None:
        """Seconds from the request to the end (None until `finish()`)."""
        return None if self.ended is None else self.ended - self.sent

    @property
    def text(self) -> str:
        """Everything received, joined."""
        return "".join(text for _, text in self.arrivals)

    @property
    def chars(self) -> int:
        """How many characters arrived."""
        return sum(len(text) for _, text in self.arrivals)

    def curve(self) -> tuple[list[float], list[int]]:
        """Times and characters received so far, from the request to the end: the points of a step plot."""
        times, counts, total = [self.sent], [0], 0
        for t, text in self.arrivals:
            total += len(text)
            times.append(t)
            counts.append(total)
        if self.ended is not None:
            times.append(self.ended)
            counts.append(total)
        return times, counts

    def summary(self) -> str:
        """One line in units the notebooks' output sanitizer recognises, e.g. `... first token after 0.52 s ...`."""
        first = "no text" if self.ttft is None else f"first token after {self.ttft:.2f} s"
        total = "not finished" if self.total is None else f"total {self.total:.2f} s"
        return f"{self.label or 'reply'}: {first}, {total}, {self.chars} characters in {len(self.arrivals)} pieces"


def time_output(
    argv: Sequence[str],
    *,
    terminal: bool = True,
    label: str = "",
    timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
    begin: str | None = None,
) -> Timeline:
    """Run a program and record when its output reached us, through a terminal (pty) or a pipe.

    The timeline ends at the last text that arrived; `exited` is when the program's output closed. With `begin`,
    the clock starts when the program prints that text (which is not recorded), e.g. a line it prints
    just before sending a request, so that its start-up time is left out. `env` defaults to this process's
    environment without `PYTHONUNBUFFERED` (Jupyter kernels set it), so a Python program buffers its output the way
    it would when you run it yourself.
    """
    import pty
    import tty

    if env is None:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}

    timeline = Timeline(label or ("terminal" if terminal else "pipe"))
    if terminal:
        reader, writer = pty.openpty()
        tty.setraw(writer)  # no "\n" -> "\r\n" translation: we count the characters the program wrote
    else:
        reader, writer = os.pipe()
    try:
        # Python decides how to buffer stdout from what it is connected to: a terminal gets line buffering,
        # a pipe gets 8 KB blocks. That choice is what this function makes visible.
        process = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=writer, stderr=subprocess.STDOUT, env=dict(env)
        )
    except BaseException:
        os.close(reader)
        raise
    finally:
        os.close(writer)  # the child holds its own copy; ours would keep the reader from ever seeing the end
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    before_begin = "" if begin else None  # output seen while waiting for `begin`
    deadline = time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([reader], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError(f"{argv[0]} gave no output for {timeout:g} s")
            try:
                data = os.read(reader, 65536)
            except OSError:  # a pty reports the program's end as EIO rather than as an empty read
                data = b""
            if not data:
                break
            text = decoder.decode(data)
            if begin and before_begin is not None:  # still waiting for `begin`
                before_begin += text
                if begin not in before_begin:
                    continue
                timeline.sent = timeline.now()
                text, before_begin = before_begin.split(begin, 1)[1], None
                if not text:
                    continue
            timeline.record(text)
        # The reply ends with its last text; the program's exit after it (interpreter shutdown) is not the reply's.
        timeline.exited = timeline.now()
        timeline.ended = timeline.arrivals[-1][0] if timeline.arrivals else timeline.exited
    except BaseException:
        process.kill()
        raise
    finally:
        os.close(reader)
        process.wait()
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, list(argv), output=before_begin or timeline.text)
    if before_begin is not None:
        raise ValueError(f"{argv[0]} never printed {begin!r}; its output was {before_begin!r}")
    return timeline
