"""The benchmarks' tools: servers in their own pinned processes, CPU and memory sampling, an SSE load client, stats.

Every server runs in a subprocess so that the process measured is the only one on its core (`cpus=`), and so that a
client or a simulator sharing the interpreter cannot steal its GIL.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
MODEL = "claude-haiku-4-5"


# -- the machine -----------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures were measured on: CPU, cores, memory, kernel, Python and the packages that matter."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    packages = ("anthropic", "fastapi", "starlette", "uvicorn", "uvloop", "httptools", "httpx")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": {name: version(name) for name in packages},
    }


# -- numbers ---------------------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(seconds: float | None) -> float | None:
    """Seconds to milliseconds, rounded for a report."""
    return None if seconds is None else round(seconds * 1000, 3)


# -- processes -------------------------------------------------------------------------------------------------------


def free_port() -> int:
    """A free loopback port (for servers that cannot report the one they picked, e.g. several uvicorn workers)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Service:
    """A server in its own process: its URL, its process, and the cores it may use."""

    name: str
    url: str
    proc: subprocess.Popen[str]
    cpus: set[int] | None = None

    @property
    def pid(self) -> int:
        """The server's main process id."""
        return self.proc.pid

    def stop(self) -> None:
        """Ask the server to stop (SIGTERM), then kill it if it has not stopped within a few seconds."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                for child in psutil.Process(self.proc.pid).children(recursive=True):
                    child.kill()
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def raise_file_limit() -> None:
    """Allow as many open sockets as the system permits: 1000 streams through an app hold 2000 of them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def start_service(
    name: str,
    argv: list[str],
    *,
    cpus: set[int] | None = None,
    url: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 90.0,
) -> Service:
    """Start `python argv...` pinned to `cpus`; its URL is `url`, else the first line it prints. Waits until ready
    (a busy machine can take half a minute just to import the app)."""

    def pin() -> None:  # runs in the child before exec: every thread and worker it starts inherits the pinning
        raise_file_limit()
        if cpus:
            os.sched_setaffinity(0, cpus)

    stderr = None if os.environ.get("BENCH_DEBUG") else subprocess.DEVNULL  # BENCH_DEBUG=1: see a server's errors
    proc = subprocess.Popen(
        [sys.executable, *argv],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        preexec_fn=pin,
        env={**os.environ, **(env or {})},
    )
    if url is None:
        url = _first_line(proc, timeout)
    service = Service(name, url.rstrip("/"), proc, cpus)
    deadline = time.monotonic() + timeout
    while True:  # ready means it answers HTTP, not merely that it has printed something
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with status {proc.returncode} before it was ready")
        try:
            httpx.get(service.url + "/", timeout=1.0)
            return service
        except httpx.TransportError:
            if time.monotonic() > deadline:
                service.stop()
                raise RuntimeError(f"{name} did not answer on {service.url} within {timeout:g} s") from None
            time.sleep(0.05)


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline() if proc.stdout else ""), daemon=True)
    reader.start()
    reader.join(timeout)
    if not result or not result[0].strip():
        proc.kill()
        raise RuntimeError(f"{proc.args!r} printed no address within {timeout:g} s")
    return result[0].strip()


def start_simulator(speed: float, cpus: set[int] | None = None) -> Service:
    """The course's simulator, `python -m course_utils.simulator`, in its own process."""
    return start_service(
        "simulator", ["-m", "course_utils.simulator", "--port", "0", "--speed", f"{speed:g}"], cpus=cpus
    )


def set_speed(simulator: Service, speed: float) -> None:
    """Change a running simulator's pacing through its control endpoint."""
    httpx.post(simulator.url + "/_sim/config", json={"speed": speed}, timeout=5).raise_for_status()


def reset_simulator(simulator: Service) -> None:
    """Zero a running simulator's counters and drop its queued faults."""
    httpx.post(simulator.url + "/_sim/reset", timeout=5).raise_for_status()


def sim_stats(simulator: Service) -> dict[str, Any]:
    """The simulator's counters (`streams_open`, `streams_completed`...)."""
    return httpx.get(simulator.url + "/_sim/stats", timeout=5).json()


def start_app(
    kind: str,
    upstream: str,
    *,
    cpus: set[int] | None = None,
    loop: str = "auto",
    http: str = "auto",
    workers: int = 1,
    env: dict[str, str] | None = None,
) -> Service:
    """The chat app (`kind` "async": the course's FastAPI app; "blocking": thread per request) in its own process."""
    port = free_port()
    argv = [
        "-m",
        "benchmarks.apps",
        "--app",
        kind,
        "--upstream",
        upstream,
        "--port",
        str(port),
        "--loop",
        loop,
        "--http",
        http,
        "--workers",
        str(workers),
    ]
    return start_service(f"{kind} app", argv, cpus=cpus, url=f"http://127.0.0.1:{port}", env=env)


# -- measuring a process ---------------------------------------------------------------------------------------------


@dataclass
class Usage:
    """What a process (and its children) used during a measurement."""

    cpu_seconds: float
    wall_seconds: float
    peak_cpu_percent: float  # of one core, over any sampling interval
    peak_rss_mib: float

    @property
    def cpu_percent(self) -> float:
        """Average use of one core over the measurement (100 = one core busy all the time)."""
        return 100 * self.cpu_seconds / self.wall_seconds if self.wall_seconds else 0.0

    def to_dict(self) -> dict[str, float]:
        """The usage as report-ready numbers."""
        return {
            "cpu_seconds": round(self.cpu_seconds, 3),
            "cpu_percent": round(self.cpu_percent, 1),
            "peak_cpu_percent": round(self.peak_cpu_percent, 1),
            "peak_rss_mib": round(self.peak_rss_mib, 1),
        }


class Monitor:
    """Samples a process tree's CPU time and resident memory in a background thread (`with Monitor(pid) as m:`)."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._peak_cpu = 0.0
        self._peak_rss = 0
        self.usage: Usage | None = None

    def _tree(self) -> list[psutil.Process]:
        try:
            return [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def _sample(self) -> tuple[float, int]:
        cpu, rss = 0.0, 0
        for proc in self._tree():
            try:
                times = proc.cpu_times()
                cpu += times.user + times.system
                rss += proc.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return cpu, rss

    def _run(self) -> None:
        last_cpu, last_t = self._sample()[0], time.perf_counter()
        while not self._stop.wait(self.interval):
            cpu, rss = self._sample()
            now = time.perf_counter()
            self._peak_rss = max(self._peak_rss, rss)
            self._peak_cpu = max(self._peak_cpu, 100 * (cpu - last_cpu) / (now - last_t))
            last_cpu, last_t = cpu, now

    def __enter__(self) -> Monitor:
        self._cpu0, self._peak_rss = self._sample()
        self._t0 = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        cpu, rss = self._sample()
        self.usage = Usage(
            cpu - self._cpu0, time.perf_counter() - self._t0, self._peak_cpu, max(self._peak_rss, rss) / 2**20
        )


def cpu_seconds(pid: int) -> float:
    """CPU seconds a live process has used, to the nanosecond where Linux tells (`schedstat`), else to the tick.

    Per-request costs are a few milliseconds: the 10 ms tick of `cpu_times()` would be most of the figure.
    """
    try:
        tasks = Path(f"/proc/{pid}/task")
        return sum(int((task / "schedstat").read_text().split()[0]) for task in tasks.iterdir()) / 1e9
    except (OSError, ValueError, IndexError):
        times = psutil.Process(pid).cpu_times()
        return times.user + times.system


def machine_busy() -> float:
    """CPU seconds every core of the machine has spent busy so far (to tell how much other programs took)."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def wait_for_quiet(max_wait: float, cores: float = 0.25, window: float = 1.0) -> float:
    """Wait until the machine's other programs use less than `cores` cores (over `window` s); returns seconds waited.

    On a shared machine a burst of someone else's work can take a pinned server's core for seconds; waiting for it
    to pass (never more than `max_wait`) keeps those bursts out of the figures when it can.
    """
    started = time.monotonic()
    while True:
        busy = machine_busy()
        time.sleep(window)
        if (machine_busy() - busy) / window < cores or time.monotonic() - started + window > max_wait:
            return round(time.monotonic() - started, 1)


def process_cpu() -> float:
    """CPU seconds this process has used so far."""
    times = psutil.Process().cpu_times()
    return times.user + times.system


# -- the load client -------------------------------------------------------------------------------------------------


@dataclass
class ChatResult:
    """One `/api/chat` stream as the client saw it: when each event arrived, and what it said."""

    status: int = 0
    started: float = 0.0
    texts: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # arrival of each text event, perf_counter seconds
    terminal: str | None = None  # "done" or "error"
    terminal_data: dict[str, Any] | None = None
    garbled: int = 0  # events that were not `text`/`done`/`error` with valid JSON
    comments: int = 0  # keep-alive comments (`: ping`)
    failure: str | None = None  # a transport error or a timeout, by class name

    @property
    def ttft(self) -> float | None:
        """Seconds from sending the request to the first text event."""
        return self.times[0] - self.started if self.times else None

    @property
    def gaps(self) -> list[float]:
        """Seconds between consecutive text events."""
        return [b - a for a, b in itertools.pairwise(self.times)]


class LoadClient:
    """An HTTP/1.1 client spoken by hand over asyncio streams, keeping connections alive between requests.

    httpx was the first load client (its pool raised to N: the default of 100 silently queues the rest), but it
    spends about 0.4 ms of CPU per SSE chunk: at 2,400 events/s it filled a core and became the bottleneck it was
    there to measure. This one costs two buffered reads per chunk.
    """

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        self._head = f"host: {parts.netloc}\r\ncontent-type: application/json\r\n{extra}"
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def __aenter__(self) -> LoadClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()

    async def chat(
        self, path: str, body: dict[str, Any], *, stop_after: int | None = None, api: bool = False
    ) -> ChatResult:
        """POST one chat and read its SSE stream to the end (or leave after `stop_after` text events).

        `api=True` reads the Messages API's own events (a request straight to the simulator) into the same result:
        text deltas as text, `message_stop` as `done` with the stop reason and usage the app would report.
        """
        payload = json.dumps(body).encode()
        request = f"POST {path} HTTP/1.1\r\n{self._head}content-length: {len(payload)}\r\n\r\n".encode() + payload
        result = ChatResult(started=time.perf_counter())
        reused = bool(self._idle)
        reader, writer = self._idle.pop() if reused else await asyncio.open_connection(self.host, self.port)
        reusable = False
        try:
            writer.write(request)
            status = await reader.readline()
            if not status and reused:  # the server closed the idle connection meanwhile: once more, on a new one
                writer.close()
                reader, writer = await asyncio.open_connection(self.host, self.port)
                writer.write(request)
                status = await reader.readline()
            result.status = int(status.split()[1])
            headers = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            reusable = await _read_body(reader, headers, result, stop_after, api)
            reusable = reusable and headers.get("connection") != "close"
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
            result.failure = type(exc).__name__
        finally:
            if reusable:
                self._idle.append((reader, writer))
            else:
                writer.close()  # leaving mid-stream closes the connection: a client that went away
        return result


async def _chunks(reader: asyncio.StreamReader, headers: dict[str, str]) -> AsyncIterator[bytes]:
    """A response body as it arrives: chunk by chunk if chunked, else its Content-Length."""
    if "chunked" not in headers.get("transfer-encoding", ""):
        yield await reader.readexactly(int(headers.get("content-length", "0")))
        return
    while size := int((await reader.readline()).split(b";")[0], 16):
        yield (await reader.readexactly(size + 2))[:-2]
    await reader.readexactly(2)  # the blank line after the last, empty chunk


async def _read_body(
    reader: asyncio.StreamReader, headers: dict[str, str], result: ChatResult, stop_after: int | None, api: bool
) -> bool:
    """Read a response body into `result`; True if it was read to its end (the connection may be reused)."""
    if result.status != 200:
        try:
            result.terminal_data = json.loads(b"".join([chunk async for chunk in _chunks(reader, headers)]))
        except ValueError:
            result.garbled += 1
        return True
    take = _take_api_frame if api else _take_frame
    buffer = b""
    async for chunk in _chunks(reader, headers):
        now = time.perf_counter()
        *frames, buffer = (buffer + chunk).split(b"\n\n")
        for frame in frames:
            if frame.startswith(b":"):  # a keep-alive comment
                result.comments += 1
                continue
            try:
                take(result, *_split_frame(frame), now)
            except (ValueError, KeyError, TypeError):
                result.garbled += 1
        if stop_after is not None and len(result.texts) >= stop_after:
            return False
    if buffer.strip():
        result.garbled += 1
    return True


def _split_frame(frame: bytes) -> tuple[str, Any]:
    """An event's name and decoded JSON data; the servers measured send one `event:` and one `data:` line."""
    head, data = frame.split(b"\n", 1)
    if not (head.startswith(b"event: ") and data.startswith(b"data: ")):
        raise ValueError("not an `event:` line then a `data:` line")
    return head[7:].decode(), json.loads(data[6:])


def _take_frame(result: ChatResult, name: str, payload: Any, now: float) -> None:
    """Record one of the app's events: `text`, then `done` or `error`."""
    if name == "text" and isinstance(payload.get("text"), str):
        result.texts.append(payload["text"])
        result.times.append(now)
    elif name in ("done", "error") and result.terminal is None:
        result.terminal, result.terminal_data = name, payload
    else:
        raise ValueError(f"unexpected event {name!r}")


def _take_api_frame(result: ChatResult, name: str, payload: Any, now: float) -> None:
    """Record one of the Messages API's events as the app would relay it."""
    meta = result.terminal_data = result.terminal_data or {"stop_reason": None, "usage": {}}
    if name == "content_block_delta" and payload["delta"]["type"] == "text_delta":
        result.texts.append(payload["delta"]["text"])
        result.times.append(now)
    elif name == "message_start":
        meta["usage"]["input_tokens"] = payload["message"]["usage"]["input_tokens"]
    elif name == "message_delta":
        meta["stop_reason"] = payload["delta"]["stop_reason"]
        meta["usage"]["output_tokens"] = payload["usage"]["output_tokens"]
    elif name == "message_stop":
        result.terminal = "done"
    elif name == "error":
        result.terminal, result.terminal_data = "error", payload["error"]


def run_async(coro: Any) -> Any:
    """Run a coroutine on uvloop when available: the load client must not be the bottleneck it measures."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)
