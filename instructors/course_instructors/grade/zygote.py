"""The warm pool's template process: it imports, once, what every grading kernel would import anyway, then forks a
fresh worker (and, in it, a fresh kernel) for each notebook. Nothing is ever reused: each fork serves one notebook.

It is not imported as `course_instructors.grade.zygote`: `pool.py` runs this file's text under `python -c`, so the
template (and every kernel forked from it) holds exactly the modules a cold kernel holds, nothing of the grader's.

    template (this file)  --fork-->  worker (one notebook)  --fork-->  kernel (ipykernel, that notebook's cells)

- The template imports ipykernel (what `python -m ipykernel_launcher` imports) and what the grading harness imports
  in the bootstrap cell before any learner code runs (the SDK, httpx2, the simulator, course_utils.selfcheck). So a
  submission sees the same `sys.modules` as in a cold kernel: `tests/test_grader.py` compares the two.
- The worker forks its kernel first, while it is still a plain copy of the template; only then does it import the
  grader (nbclient...). The kernel waits until the worker's kernel manager sends it the launch command, environment and
  folder (as jupyter_client would pass to Popen), then becomes `ipykernel_launcher` with that command line.
- The kernel's parent is its worker, as with a cold start: a submission that kills its parent kills its worker.

Protocol with `pool.py` on stdin/stdout, one line each: `spawn ID DIR` -> (the worker writes) `ready ID PID` or
`failed ID REASON`; the template writes `exit ID PID CODE` when a worker ends (CODE < 0: killed by that signal).
"""

import os
import signal
import sys
from collections.abc import Iterator

# What `python -m ipykernel_launcher` does first: the current folder is not on sys.path while ipykernel loads.
if sys.path and (sys.path[0] == "" or os.path.abspath(sys.path[0]) == os.getcwd()):
    del sys.path[0]

PRELOAD = (
    "runpy",  # `python -m` loads it first
    # ipykernel and what its kernel app loads while it starts
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "IPython",
    # what the grading harness imports in the bootstrap cell, before any learner code (harness.py)
    "anthropic",
    "httpx2",
    "course_utils.selfcheck",
    "course_utils.simulator",
)

_spawned: dict[int, str] = {}  # worker pid -> id
_out_fd = 1  # the protocol's output (the pool reads it)


def _say(line: str) -> None:
    os.write(_out_fd, (line + "\n").encode())  # one write of a short line: whole even with several writers


def _preload() -> None:
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)


def _reap(*_: object) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        wid = _spawned.pop(pid, "?")
        _say(f"exit {wid} {pid} {code}")


def _serve() -> None:
    signal.signal(signal.SIGCHLD, _reap)
    _say(f"template {os.getpid()}")
    for line in _lines(0):  # the pool closes our stdin to stop us
        parts = line.split(" ", 2)
        if parts[0] == "spawn" and len(parts) == 3:
            wid, folder = parts[1], parts[2].rstrip("\n")
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
            pid = os.fork()
            if pid == 0:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
                _worker(wid, folder)  # never returns
            _spawned[pid] = wid
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def _lines(fd: int) -> Iterator[str]:
    """Lines read from `fd` with os.read: sys.stdin stays untouched (and unbuffered) for the kernels forked later."""
    pending = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for safety
            continue
        if not chunk:
            return
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            yield line.decode()


def _worker(wid: str, folder: str) -> None:
    """In the forked worker: fork the kernel-to-be at once, then load the grader and hand over to it."""
    code = 1
    try:
        os.setsid()  # as the cold path's `start_new_session=True`
        os.chdir(folder)
        status = os.dup(_out_fd)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):  # as the cold path's DEVNULL: a submission printing gigabytes fills no pipe
            os.dup2(null, fd)
        os.close(null)
        launch_r, launch_w = os.pipe()  # the kernel manager's launch spec, to the kernel-to-be
        started_r, started_w = os.pipe()  # the kernel-to-be: "I have my own session now"
        stdin_r, stdin_w = os.pipe()  # the kernel's stdin, as Popen(stdin=PIPE) gives it
        kernel = os.fork()
        if kernel == 0:
            for fd in (status, launch_w, started_r, stdin_w):
                os.close(fd)
            _kernel(launch_r, started_w, stdin_r)  # never returns
        for fd in (launch_r, started_w, stdin_r):
            os.close(fd)
        sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - fd 0 is /dev/null now
        sys.stdout = sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
        from course_instructors.grade import pool

        code = pool.worker_main(wid, folder, status, kernel, launch_w, started_r, stdin_w)
    except BaseException:  # noqa: BLE001 - a worker never returns into the template's loop
        code = 1
    finally:
        os._exit(code)


def _kernel(launch_r: int, started_w: int, stdin_r: int) -> None:
    """In the forked kernel-to-be: wait for the launch spec, then run ipykernel as `python -m ipykernel_launcher`."""
    import json
    import types

    code = 1
    try:
        os.setsid()  # its own session and process group, as jupyter_client's launcher gives a kernel
        os.write(started_w, b"1")
        os.close(started_w)
        with os.fdopen(launch_r, "rb") as pipe:
            data = pipe.read()
        if not data:  # the worker went away before launching it
            os._exit(0)
        spec = json.loads(data)
        os.dup2(stdin_r, 0)
        os.close(stdin_r)
        os.environ.clear()
        os.environ.update(spec["env"])
        if spec.get("cwd"):
            os.chdir(spec["cwd"])
        import ipykernel_launcher

        main = types.ModuleType("__main__")
        main.__file__ = ipykernel_launcher.__file__
        sys.modules["__main__"] = main
        del sys.modules["ipykernel_launcher"]  # a cold kernel runs it as __main__, not under its name
        sys.argv = [ipykernel_launcher.__file__, *spec["args"]]
        # sys.stdin/stdout/stderr stay the ones Python made at start-up (never read or written in the template),
        # now over this kernel's fds 0-2, as a cold kernel's.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from ipykernel import kernelapp

        # Read from the environment when ipykernel was imported (in the template): read it again now. It makes the
        # kernel exit when its worker dies, as a cold kernel does.
        parent = int(os.environ.get("JPY_PARENT_PID") or 0)
        kernelapp.IPKernelApp.parent_handle.default_value = parent
        initial = vars(kernelapp.IPKernelApp).get("_static_immutable_initial_values")
        if isinstance(initial, dict) and "parent_handle" in initial:  # traitlets' copy of the default
            initial["parent_handle"] = parent

        try:
            kernelapp.launch_new_instance()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        import atexit

        atexit._run_exitfuncs()
    except BaseException:  # noqa: BLE001
        code = 1
    finally:
        os._exit(code)


if __name__ == "_course_grade_zygote":
    _preload()
    _serve()
