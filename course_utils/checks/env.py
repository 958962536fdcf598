"""What a check works with: the learner's names, a private simulator, SDK clients that record what they send, and a
careful way to call the learner's code (async or not, with the course's own helpers out of bounds)."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

from .base import CheckFailed, Forbidden, LearnerError, LearnerExit, Missing, NotWritten, Task

if TYPE_CHECKING:
    import anthropic
    from anthropic.types import MessageParam

    from course_utils.simulator import Simulator

MODEL = "claude-haiku-4-5"
API_KEY = "course-checks-no-key-needed"


def as_messages(history: list[dict[str, Any]]) -> list[MessageParam]:
    """A history of plain dicts (the learner's, or one a check built) as the SDK's message params."""
    # Only a type changes: the simulator validates every request the way the API does, so a wrong dict still fails.
    return cast("list[MessageParam]", history)


class Env:
    """One check's view of the learner's notebook, plus a simulator reset for it."""

    def __init__(
        self, namespace: Mapping[str, Any], simulator: Simulator, task: Task | None = None, model: str = MODEL
    ) -> None:
        self.namespace = namespace
        self.sim = simulator
        self.task = task
        self.model = model
        self.sent: list[dict[str, Any]] = []  # JSON bodies of the requests this check's clients sent

    # -- the learner's code --------------------------------------------------------------------------------------------

    def learner(self, name: str | None = None) -> Any:
        """The learner's object called `name` (default: the task's), or Missing with a helpful message."""
        name = name or (self.task.name if self.task else "")
        if name not in self.namespace:
            raise Missing(f"`{name}` is not defined: run the cell that defines it (and keep its name).")
        return self.namespace[name]

    def call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call the learner's `func` (awaiting it if async) with the task's forbidden helpers watched."""
        return self.run(f"{getattr(func, '__name__', 'your code')}(...)", lambda: func(*args, **kwargs))

    def run(self, label: str, thunk: Callable[[], Any]) -> Any:
        """Run `thunk()`, code that calls the learner's (an async def is awaited on a fresh loop), turning what the
        learner's code does wrong into a clear failure named after `label`."""
        with self.watch():
            try:
                result = thunk()
                if inspect.isawaitable(result):
                    result = run_async(_await(result))
            except NotImplementedError as exc:
                raise NotWritten(str(exc)) from None
            except SystemExit as exc:
                raise LearnerExit(f"{label} called sys.exit({exc.code!r})") from None
            except (Missing, NotWritten, LearnerExit, Forbidden, LearnerError, CheckFailed):
                raise
            except Exception as exc:
                raise LearnerError(exc, label) from None
        return result

    @contextmanager
    def watch(self) -> Iterator[None]:
        """Raise Forbidden after the block if the learner's code ran any code of the task's forbidden modules."""
        forbidden = self.task.forbid if self.task else ()
        if not forbidden:
            yield
            return
        watcher = ForbiddenWatcher(forbidden)
        with watcher:
            yield
        if watcher.hit:
            module, function = watcher.hit
            raise Forbidden(
                f"this task asks you to write it yourself, but your code used `{module}` "
                f"({function}); remove that and write the logic in your own code."
            )

    @contextmanager
    def serve(self, app: Any) -> Iterator[str]:
        """Serve the learner's ASGI app with uvicorn on a free port in a thread (watched for the task's forbidden
        helpers, like a call); yield its base URL."""
        from course_utils.serving import BackgroundServer, bind_socket, uvicorn_server

        watcher = ForbiddenWatcher(self.task.forbid if self.task else ())
        # The trace hook goes on the server's own thread, where the learner's app runs.
        trace = (lambda: sys.settrace(watcher.trace)) if watcher.roots else None
        server = BackgroundServer(
            uvicorn_server(app, log_level="critical"),
            bind_socket(),
            name="checked app",
            stop_timeout=10,
            on_thread_start=trace,
        )
        try:
            server.start()
        except RuntimeError as exc:
            raise LearnerError(RuntimeError("the app did not start (see its lifespan)"), "serving your app") from exc
        try:
            yield server.origin
        finally:
            server.stop()
        if watcher.hit:
            module, function = watcher.hit
            raise Forbidden(f"this task asks you to write it yourself, but your app used `{module}` ({function}).")

    # -- clients -------------------------------------------------------------------------------------------------------

    def client(self, **options: Any) -> anthropic.Anthropic:
        """A sync SDK client on the check's simulator that records each request body in `self.sent`."""
        import anthropic
        import httpx2

        options.setdefault("max_retries", 0)
        http = httpx2.Client(event_hooks={"request": [self._record]})
        return anthropic.Anthropic(base_url=self.sim.base_url, api_key=API_KEY, http_client=http, **options)

    def async_client(self, **options: Any) -> anthropic.AsyncAnthropic:
        """An async SDK client on the check's simulator (create it inside the coroutine that uses it)."""
        import anthropic
        import httpx2

        async def record(request: Any) -> None:
            self._record(request)

        options.setdefault("max_retries", 0)
        http = httpx2.AsyncClient(event_hooks={"request": [record]})
        return anthropic.AsyncAnthropic(base_url=self.sim.base_url, api_key=API_KEY, http_client=http, **options)

    def _record(self, request: Any) -> None:
        if request.url.path.endswith("/v1/messages"):
            try:
                self.sent.append(json.loads(request.content))
            except ValueError:
                pass

    def plan(self, body: dict[str, Any]) -> Any:
        """What the simulator sends for this request body at its current speed: texts, delays, stop reason."""
        # Absolute imports: the grader loads this package under another name, fresh from disk.
        from course_utils.simulator.plan import make_plan
        from course_utils.simulator.replies import compose

        return make_plan(body, compose(body), msg_id="msg_check", model=body["model"], speed=self.sim.speed)

    def request(self, prompt: str, max_tokens: int, **extra: Any) -> dict[str, Any]:
        """Keyword arguments for `messages.create/stream` with one user turn."""
        return {
            "model": self.model,
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": prompt}],
            **extra,
        }


async def _await(awaitable: Any) -> Any:
    return await awaitable


def run_async(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, even inside Jupyter, where an event loop is already running.

    A kernel cell runs inside the kernel's loop, so `asyncio.run()` refuses; a fresh loop on this thread, with the
    kernel's loop set aside while it runs, keeps the learner's code on the main thread (where time limits work).
    """
    from asyncio import events

    outer = events._get_running_loop()
    events._set_running_loop(None)
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=2))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
            events._set_running_loop(outer)


class ForbiddenWatcher:
    """Notices any Python call into the forbidden modules' source files, through the global trace hook (which sees
    only Python function calls, so it costs little; it returns no local tracer, so lines are never traced)."""

    def __init__(self, modules: tuple[str, ...]) -> None:
        # Paired before filtering: a module without a source file must not shift the names of the ones after it.
        found = [(root, name) for name in modules if (root := _source_root(name))]
        self.roots = tuple(root for root, _ in found)
        self.names = dict(found)
        self.hit: tuple[str, str] | None = None
        self._seen: dict[str, str | None] = {}  # filename -> the forbidden root it is under, if any
        self._previous: Any = None
        self._previous_threads: Any = None

    def trace(self, frame: FrameType, event: str, arg: Any) -> None:
        """The trace function: record the first call into a forbidden file."""
        filename = frame.f_code.co_filename
        root = self._seen.get(filename, "")
        if root == "":
            root = self._seen[filename] = next((r for r in self.roots if filename.startswith(r)), None)
        if root is not None and self.hit is None:
            self.hit = (self.names[root], frame.f_code.co_qualname)

    def __enter__(self) -> ForbiddenWatcher:
        self._previous, self._previous_threads = sys.gettrace(), threading.gettrace()
        sys.settrace(self.trace)
        threading.settrace(self.trace)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.settrace(self._previous)
        threading.settrace(self._previous_threads)


@functools.cache
def _source_root(module_name: str) -> str | None:
    """The file (module) or folder (package) holding a module's source, without importing anything new."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    origin = Path(spec.origin)
    return str(origin.parent) + "/" if spec.submodule_search_locations else str(origin)
