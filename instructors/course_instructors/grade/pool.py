"""A pool of pre-started fresh kernels: while notebooks are graded, the next workers (each with its kernel started,
the SDK already imported) wait ready. Each worker and its kernel grade exactly one notebook and are never reused.

The template process (`zygote.py`) imports once what every kernel imports anyway, and forks one worker per notebook;
each worker forks its own kernel at once, so the kernel is a fresh process whose parent is its worker, as in a cold
start. What a kernel costs then is a fork and ipykernel's own start-up, not a new interpreter importing the SDK.

The grader talks to the template through two pipes (see zygote.py) and to each worker through a FIFO in the
worker's folder: the job goes in, the worker writes `result.json` beside it and exits.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .processes import kill_orphan_kernel, kill_tree

ZYGOTE = Path(__file__).with_name("zygote.py")
# Run the template's file in a plain namespace (not as a module of the grader): its kernels must see only what a cold
# kernel sees. The trailing argument only names the process (the grader's orphan clean-up looks for "ipykernel").
BOOT = (
    "_p = {path!r}\n"
    "exec(compile(open(_p, encoding='utf-8').read(), _p, 'exec'), {{'__name__': '_course_grade_zygote', "
    "'__file__': _p, '__builtins__': __builtins__}})\n"
)
# The kernels' environment has to be in place when the template's interpreter starts (PYTHONWARNINGS and the like
# are read then), on top of this process's own (with what C libraries such as readline set in it, as a cold worker
# inherits it): a first interpreter applies the changes and becomes the template with exec.
ENVIRON = (
    "import json, os, sys\n"
    "changes = json.loads(sys.argv[1])\n"
    "for name in changes['unset']:\n"
    "    os.environ.pop(name, None)\n"
    "os.environ.update(changes['set'])\n"
    "os.execv(sys.executable, [sys.executable, '-c', changes['boot'], 'ipykernel-pool'])\n"
)


@dataclass
class Worker:
    """A forked worker with its kernel started, waiting for one notebook."""

    wid: str
    folder: Path
    pid: int = 0
    exited: threading.Event = field(default_factory=threading.Event)
    code: int | None = None
    ready_at: float = 0.0


class KernelPool:
    """Keeps `warm` workers started ahead; `take()` hands out one, never the same twice."""

    def __init__(self, warm: int, env: dict[str, str]) -> None:
        """`warm`: how many workers to keep started ahead; `env`: the environment kernels get."""
        self.warm = max(1, warm)
        self._root = Path(tempfile.mkdtemp(prefix="course-grade-pool-"))
        self._lock = threading.Condition()
        self._ready: deque[Worker] = deque()
        self._starting: dict[str, Worker] = {}
        self._running: dict[str, Worker] = {}
        self._count = 0
        self._closed = False
        self._failures: list[str] = []
        self._limit: int | None = None  # how many notebooks are to come, once known: no kernel started for nothing
        changes = {
            "set": {k: v for k, v in env.items() if os.environ.get(k) != v},
            "unset": [k for k in os.environ if k not in env],
            "boot": BOOT.format(path=str(ZYGOTE)),
        }
        self._proc = subprocess.Popen(
            [sys.executable, "-c", ENVIRON, json.dumps(changes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=self._root,
            start_new_session=True,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, name="kernel-pool", daemon=True)
        self._reader.start()
        with self._lock:
            self._fill()

    # -- the grader's side -------------------------------------------------------------------------------------------

    def take(self, timeout: float = 120) -> Worker:
        """A ready worker (waiting for one if none is ready yet); another one starts in its place."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not self._ready:
                if self._closed or self._proc.poll() is not None:
                    raise RuntimeError("the kernel pool stopped" + self._why())
                if len(self._failures) > 3 * self.warm + 3:
                    raise RuntimeError("the kernel pool cannot start kernels" + self._why())
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("no kernel of the pool became ready in time" + self._why())
                self._lock.wait(min(left, 1.0))
            worker = self._ready.popleft()
            self._running[worker.wid] = worker
            self._fill()
            return worker

    def expect(self, notebooks: int) -> None:
        """Start no more workers than `notebooks` will use (more only to replace workers that failed to start)."""
        with self._lock:
            self._limit = notebooks

    def run(self, worker: Worker, job: dict[str, Any], limit: float) -> int | None:
        """Give the worker its one job and wait for it to end: its exit code, or None if it overran `limit`."""
        fifo = worker.folder / "job"
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # the worker holds it open for reading
        with os.fdopen(fd, "w", encoding="utf-8") as pipe:
            os.set_blocking(fd, True)
            pipe.write(json.dumps(job))
        began = time.monotonic()
        if not worker.exited.wait(limit):
            return None
        if worker.code is None:  # the template went away first: wait for the worker itself
            import psutil

            try:
                psutil.Process(worker.pid).wait(max(0.0, limit - (time.monotonic() - began)))
            except psutil.NoSuchProcess:
                pass
            except psutil.TimeoutExpired:
                return None
            return -1
        return worker.code

    def wait_exit(self, worker: Worker, timeout: float = 10) -> None:
        worker.exited.wait(timeout)

    def close(self) -> None:
        """Stop the template and every worker not handed out (with its kernel)."""
        with self._lock:
            self._closed = True
            idle = [*self._ready, *self._starting.values()]
            self._ready.clear()
            self._lock.notify_all()
        try:
            if self._proc.stdin:
                self._proc.stdin.close()
        except OSError:
            pass
        for worker in idle:
            if worker.pid:
                kill_tree(worker.pid)
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            kill_tree(self._proc.pid)
        for worker in idle:
            kill_orphan_kernel(worker.folder / "kernel.pid")
        import shutil

        shutil.rmtree(self._root, ignore_errors=True)

    # -- inside -------------------------------------------------------------------------------------------------------

    def _fill(self) -> None:
        while not self._closed and len(self._ready) + len(self._starting) < self.warm:
            if self._limit is not None and self._count >= self._limit + len(self._failures):
                return
            self._count += 1
            wid = f"w{self._count}"
            folder = self._root / wid
            folder.mkdir()
            os.mkfifo(folder / "job", 0o600)
            self._starting[wid] = Worker(wid, folder)
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.write(f"spawn {wid} {folder}\n")
                self._proc.stdin.flush()
            except (OSError, ValueError):
                self._starting.pop(wid)
                return

    def _why(self) -> str:
        return f" ({self._failures[-1]})" if self._failures else ""

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            kind, _, rest = line.rstrip("\n").partition(" ")
            with self._lock:
                if kind == "ready":
                    wid, _, pid = rest.partition(" ")
                    worker = self._starting.pop(wid, None)
                    if worker is not None:
                        worker.pid, worker.ready_at = int(pid), time.monotonic()
                        self._ready.append(worker)
                elif kind == "failed":
                    wid, _, reason = rest.partition(" ")
                    self._failures.append(reason)
                elif kind == "exit":
                    wid, pid, code = rest.split(" ")
                    worker = self._starting.pop(wid, None) or self._running.pop(wid, None)
                    if worker is None:
                        worker = next((w for w in self._ready if w.wid == wid), None)
                        if worker is not None:
                            self._ready.remove(worker)
                    if worker is not None:
                        worker.pid = worker.pid or int(pid)
                        worker.code = int(code)
                        worker.exited.set()
                    if not self._closed:
                        self._fill()
                self._lock.notify_all()
        with self._lock:
            self._closed = True
            for worker in [*self._starting.values(), *self._running.values()]:
                worker.exited.set()
            self._lock.notify_all()


# -- the worker's side (a fork of the template; see zygote.py) ---------------------------------------------------------


class _ForkedKernel:
    """What jupyter_client's LocalProvisioner needs of a Popen, for the kernel this worker forked."""

    def __init__(self, pid: int, stdin_fd: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.stdin = os.fdopen(stdin_fd, "wb")
        self.stdout = self.stderr = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -9
                return self.returncode
            if pid:
                self.returncode = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("kernel", timeout or 0)
            time.sleep(0.02)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(9)

    def terminate(self) -> None:
        self.send_signal(15)


def worker_main(wid: str, folder: str, status: int, kernel: int, launch_w: int, started_r: int, stdin_w: int) -> int:
    """A forked worker: start its kernel (already forked, waiting), say ready, grade the one job it gets, exit."""

    def say(line: str) -> None:
        os.write(status, (line.replace("\n", " ") + "\n").encode())

    try:
        from jupyter_client.provisioning import local_provisioner

        from . import runner

        def launch(cmd: list[str], **kwargs: Any) -> _ForkedKernel:
            if cmd[1:3] != ["-m", "ipykernel_launcher"]:
                raise RuntimeError(f"the pool starts only ipykernel kernels, not {cmd!r}")
            os.read(started_r, 1)  # the kernel-to-be has its own process group now (interrupts go to it)
            os.close(started_r)
            env = dict(kwargs.get("env") or os.environ)
            env["JPY_PARENT_PID"] = str(os.getpid())  # as jupyter_client's launcher sets it
            spec = {"args": cmd[3:], "env": env, "cwd": str(kwargs.get("cwd") or os.getcwd())}
            with os.fdopen(launch_w, "wb") as pipe:
                pipe.write(json.dumps(spec).encode())
            return _ForkedKernel(kernel, stdin_w)

        local_provisioner.launch_kernel = launch  # type: ignore[assignment] # this worker's kernel manager only
        return asyncio.run(_serve_one(say, Path(folder), runner))
    except BaseException as exc:  # noqa: BLE001
        say(f"failed {wid} {type(exc).__name__}: {exc}")
        return 1


async def _serve_one(say: Any, folder: Path, runner: Any) -> int:
    wid = folder.name
    try:
        warm = await runner.start_kernel(folder / "kernel.pid")
    except Exception as exc:  # noqa: BLE001
        say(f"failed {wid} {type(exc).__name__}: {exc}")
        return 1
    # Open the job FIFO before saying ready (so the grader's non-blocking open finds a reader), then wait for it.
    fd = os.open(folder / "job", os.O_RDONLY | os.O_NONBLOCK)
    say(f"ready {wid} {os.getpid()}")
    loop = asyncio.get_running_loop()

    template = os.getppid()

    def read_job() -> bytes:
        import select

        data = b""
        while True:
            if not select.select([fd], [], [], 1.0)[0]:
                if os.getppid() != template:  # the grader and its template are gone: no job will come
                    raise SystemExit(0)
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                if data:
                    return data
                time.sleep(0.01)  # no writer yet
                continue
            data += chunk

    try:
        raw = await loop.run_in_executor(None, read_job)
    except SystemExit:
        await _discard(warm)
        return 0
    os.close(fd)
    job_data = json.loads(raw)
    result_path = Path(job_data.pop("result_path"))
    job = runner.Job(**job_data)
    try:
        result = await runner.grade_notebook_async(job, warm)
    except Exception:  # noqa: BLE001
        import traceback

        result = {"path": job.path, "exercise": job.exercise, "crash": traceback.format_exc()[-4000:]}
    result_path.write_text(json.dumps(result), encoding="utf-8")
    return 0


async def _discard(warm: Any) -> None:
    warm.kc.stop_channels()
    try:
        await warm.km.shutdown_kernel(now=True)
    finally:
        warm.tmp.cleanup()
