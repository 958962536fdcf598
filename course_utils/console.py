"""The `course` command, the same on Linux, macOS and Windows: installed by `pip install`, or run by `./course`.

    course lab                # JupyterLab at lesson 00 (when run in the course folder), offline unless a key is set
    course sim [--port P]     # the offline simulator of the Messages API
    course app [--port P]     # the lesson 06 chat app
    course test | bench | conformance ...   # maintainers, inside a checkout of the repository only

`./course` (bash) creates the checkout's virtual environment, installs the pins, then hands over to this module.
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

LESSON_00 = Path("notebooks") / "00_start_here.ipynb"

USAGE = """usage: course COMMAND [ARGS]

Learners:
  lab [jupyter args]        open JupyterLab (at notebooks/00_start_here.ipynb when run in the course folder)
  sim [--port P] [--speed X]  serve the offline simulator of the Messages API
  app [--port P]            serve the lesson 06 chat app (it starts the simulator itself when there is no key)

@INSTRUCTORS@Maintainers (inside a checkout of the repository):
  test [pytest args]        the test suite (./course test also installs the browser and the JS SDK first)
  bench [--quick]           the benchmarks
  conformance [...]         the simulator against the real API (needs a key)
"""


def _module(name: str) -> Callable[[list[str]], int]:
    """Run `python -m name ARGS` in this interpreter, with its exit status."""

    def run(args: list[str]) -> int:
        sys.argv = [f"course {name}", *args]
        try:
            runpy.run_module(name, run_name="__main__", alter_sys=True)
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return 0

    return run


def checkout_root(start: Path | None = None) -> Path | None:
    """The repository checkout holding `start` (default: the working directory), if there is one."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "course_utils").is_dir():
            return folder
    return None


def _in_checkout(what: str, command: Callable[[Path], list[str]]) -> Callable[[list[str]], int]:
    """A maintainers' command: it runs from the checkout's root, and says plainly when there is none."""

    def run(args: list[str]) -> int:
        root = checkout_root()
        if root is None or not (root / "tests").is_dir():
            print(
                f"course {what}: run this inside a checkout of the course's repository (it needs tests/, "
                "benchmarks/ and tools/, which the installed package does not carry).",
                file=sys.stderr,
            )
            return 2
        return subprocess.call([*command(root), *args], cwd=root)

    return run


def lab_command(args: list[str], cwd: Path | None = None) -> list[str]:
    """The JupyterLab command line: lesson 00 when it is here, and --allow-root as root (containers often are)."""
    cwd = cwd or Path.cwd()
    command = [sys.executable, "-m", "jupyter", "lab"]
    # A notebook or folder named on the command line wins over lesson 00 (values of options such as --port do not).
    named = any(a.endswith(".ipynb") or (cwd / a).exists() for a in args if not a.startswith("-"))
    for start in (cwd / LESSON_00, cwd / LESSON_00.name):
        if start.is_file() and not named:
            command.append(str(start.relative_to(cwd)))
            break
    if getattr(os, "geteuid", lambda: 1)() == 0 and "--allow-root" not in args:
        command.append("--allow-root")
    return [*command, *args]


def _lab(args: list[str]) -> int:
    print("Opening the course in JupyterLab (offline unless .env holds an ANTHROPIC_API_KEY)...", flush=True)
    try:
        return subprocess.call(lab_command(args))
    except KeyboardInterrupt:
        return 0


def default_workers() -> int:
    """One pytest worker per core, plus one, at most eight."""
    # Much of the suite waits on paced streams, kernels and browsers (on 2 cores a full run uses 40 % of the CPU with
    # two workers): the extra worker fills that wait. 2 cores, 3 workers: 4 min 05 s, against 5 min 22 s with 2.
    return min(8, (os.cpu_count() or 1) + 1)


def test_command() -> list[str]:
    """pytest on COURSE_TEST_WORKERS workers (default_workers(); 0 for none), a file per worker (a notebook keeps its
    kernel)."""
    workers = os.environ.get("COURSE_TEST_WORKERS", "") or str(default_workers())
    return [sys.executable, "-m", "pytest", *(["-n", workers, "--dist", "loadfile"] if workers != "0" else [])]


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "lab": _lab,
    "sim": _module("course_utils.simulator"),
    "app": _module("course_utils.chat_app"),
    "test": _in_checkout("test", lambda root: test_command()),
    "bench": _in_checkout("bench", lambda root: [sys.executable, "-m", "benchmarks"]),
    "conformance": _in_checkout("conformance", lambda root: [sys.executable, str(root / "tools" / "conformance.py")]),
}


def main(
    argv: list[str] | None = None, commands: dict[str, Callable[[list[str]], int]] | None = None, more_usage: str = ""
) -> int:
    """Dispatch `course COMMAND ARGS...`; `help` (or nothing) prints the commands.

    `commands` and `more_usage` let the instructors' command (`course_instructors.console`) add its own.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    name = args.pop(0) if args else "help"
    commands = COMMANDS | (commands or {})
    usage = USAGE.replace("@INSTRUCTORS@", more_usage)
    if name in {"help", "-h", "--help"}:
        print(usage, end="")
        return 0
    if name not in commands:
        print(f"course: unknown command {name!r}\n\n{usage}", end="", file=sys.stderr)
        return 2
    return commands[name](args)


if __name__ == "__main__":
    sys.exit(main())
