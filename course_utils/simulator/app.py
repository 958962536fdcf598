"""The simulator's HTTP surface: a plain ASGI app, so every byte and every disconnect is under its control."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any
from urllib.parse import parse_qs

from . import faults as faults_mod
from . import wire
from .caching import CacheStore, strip_cache_control
from .faults import Fault, FaultError, FaultQueue
from .models import dated_id, known_models, model_info, models_page, spec
from .plan import Plan, check_speed, make_plan, stream_steps
from .replies import compose, request_seed
from .stats import Stats
from .tokens import count_request_tokens
from .validation import ApiError, check_version, validate_count_tokens, validate_messages

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
# Sends a response body (a stream's without its final empty chunk: `_stream` sends that once it has counted the
# stream); returns how it ended: "completed" or "failed".
Producer = Callable[[], Awaitable[str]]

MAX_BODY_BYTES = 32 * 1024 * 1024  # the real API's request size limit
SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}


class SimulatedDisconnect(Exception):
    """Raised inside a response to make the server drop the connection, as a network failure would."""


class ClientGone(Exception):
    """The client closed the connection before the simulator answered: there is no one to answer."""


class _QuietSimulatedDisconnects(logging.Filter):
    """Keep the server's log free of the tracebacks of disconnects the simulator caused on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, SimulatedDisconnect)


logging.getLogger("uvicorn.error").addFilter(_QuietSimulatedDisconnects())


class SimulatorApp:
    """The Messages API simulator as an ASGI application."""

    def __init__(self, speed: float = 1.0, faults: FaultQueue | None = None, stats: Stats | None = None) -> None:
        self.speed = speed
        self.faults = faults or FaultQueue()
        self.stats = stats or Stats()
        self.replays: deque[bytes] = deque()  # deque: appended from the caller's thread, popped in the server's
        self.cache = CacheStore()  # prompt-cache prefixes written by earlier requests, until their TTL passes
        self.closing = False
        self._inflight: set[asyncio.Task[Any]] = set()

    def close(self) -> None:
        """Cut every request in flight, as a server going down drops its connections (call on the server's loop).

        Without this, a stalled stream would hold the server's graceful shutdown until its timeout and end in
        a cancelled-task traceback.
        """
        self.closing = True
        for task in list(self._inflight):
            task.cancel()

    def snapshot(self) -> dict[str, Any]:
        """The counters, plus how many faults are queued and the pacing."""
        return {**self.stats.snapshot(), "faults_pending": len(self.faults.pending()), "speed": self.speed}

    def reset(self) -> None:
        """Zero the counters, forget the request log, drop queued faults and replays."""
        self.stats.reset()
        self.faults.clear()
        self.replays.clear()
        self.cache.reset()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        task = asyncio.current_task()
        assert task is not None
        self._inflight.add(task)
        try:
            if self.closing:
                raise SimulatedDisconnect()
            await self._route(scope, receive, send)
        except ClientGone:
            pass
        except asyncio.CancelledError:
            if not self.closing:
                raise
            raise SimulatedDisconnect() from None  # cancelled by close(): drop the connection, quietly
        finally:
            self._inflight.discard(task)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"].rstrip("/") or "/"
        request_id = "req_01" + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")
        try:
            if path.startswith("/_sim/"):
                await self._control(method, path, receive, send, headers)
            elif path == "/" and method == "GET":
                await _json(send, 200, {"simulator": "Messages API simulator", "docs": "course_utils.simulator"})
            elif "/v1/" not in path:
                raise ApiError(404, "not_found_error", f"Not found: {method} {path}")
            elif path.endswith("/v1/messages") and method == "POST":
                await self._messages(headers, receive, send, request_id)
            elif path.endswith("/v1/messages/count_tokens") and method == "POST":
                _authenticate(headers)
                version = check_version(headers)
                body = validate_count_tokens(await _read_json(receive, headers), version=version)
                await _json(send, 200, {"input_tokens": count_request_tokens(strip_cache_control(body))}, request_id)
            elif path.endswith("/v1/models") and method == "GET":
                _authenticate(headers)
                await _json(send, 200, _models_query(scope), request_id)
            elif "/v1/models/" in path and method == "GET":
                _authenticate(headers)
                model = path.rsplit("/", 1)[1]
                if model not in known_models():
                    raise ApiError(404, "not_found_error", f"model: {model}")
                await _json(send, 200, model_info(model), request_id)
            else:
                raise ApiError(404, "not_found_error", f"Not found: {method} {path}")
        except ApiError as err:
            # The real API marks its 4xx answers as not worth retrying (recorded 400s carry it).
            extra = {"x-should-retry": "false"} if 400 <= err.status < 500 else None
            await _json(
                send, err.status, wire.api_error_body(err.error_type, err.message, request_id), request_id, extra
            )

    # -- /v1/messages ------------------------------------------------------------------------------------------------

    async def _messages(self, headers: dict[str, str], receive: Receive, send: Send, request_id: str) -> None:
        # Logged on arrival and updated before each answer is sent, so a client that has its answer finds it here.
        entry = self.stats.log(
            {
                "path": "/v1/messages",
                "request_id": request_id,
                "model": None,
                "stream": None,
                "fault": None,
                "status": None,
                "retry_count": _int_header(headers, "x-stainless-retry-count"),
            }
        )
        try:
            _authenticate(headers)
            version = check_version(headers)
            body = validate_messages(await _read_json(receive, headers), version=version)
            self.stats.update(entry, model=body["model"], stream=bool(body.get("stream")))
            try:
                fault = faults_mod.fault_from_headers(headers) or self.faults.pop()
            except FaultError as exc:
                raise ApiError(400, "invalid_request_error", str(exc)) from exc
            if fault:
                self.stats.add("faults_injected")
                self.stats.update(entry, fault=fault.kind)
            if fault and fault.kind == "error_midstream" and not body.get("stream"):
                # Without a stream to carry it, the same overload is a plain 529.
                fault = Fault("overloaded", retry_after=fault.retry_after)
            if fault and fault.pre_stream:
                self.stats.update(entry, status=faults_mod.PRE_STREAM[fault.kind])
                await _fault_response(send, fault, request_id)
                return
            self.stats.update(entry, status=200)
            replay = _pop(self.replays)
            if replay is not None:
                await self._stream(send, receive, partial(_send_replay, send, replay), request_id)
                return
            future = headers.get("x-sim-future-events", "").lower() in ("1", "true", "yes")
            model = dated_id(body["model"])
            model_spec = spec(model)
            cached = self.cache.usage(body, model=model, min_tokens=model_spec.cache_min_tokens if model_spec else 1024)
            cache = {
                "cache_creation_input_tokens": cached.cache_creation_input_tokens,
                "cache_read_input_tokens": cached.cache_read_input_tokens,
                "ephemeral_5m_input_tokens": cached.ephemeral_5m_input_tokens,
                "ephemeral_1h_input_tokens": cached.ephemeral_1h_input_tokens,
            }
            plan = make_plan(
                body,
                compose(strip_cache_control(body)),
                model=model,
                speed=self.speed,
                msg_id=wire.make_id("msg_", f"{request_seed(body)}"),
                future_events=future,
                cache=cache,
                input_tokens=cached.input_tokens,
            )
            if body.get("stream"):
                await self._stream(send, receive, partial(_send_stream, send, plan, fault), request_id)
            else:
                await _until_gone(receive, partial(_send_whole, send, plan, fault, request_id))
        except ApiError as err:
            self.stats.update(entry, status=err.status)
            raise

    async def _stream(self, send: Send, receive: Receive, produce: Producer, request_id: str) -> None:
        """Send a 200 event stream's headers, run its producer, and count how the stream ended."""
        await send(_start(200, {**SSE_HEADERS, **wire.ratelimit_headers()}, request_id))
        self.stats.add("streams_open")
        try:
            outcome = await _until_gone(receive, produce)
        except BaseException:
            self.stats.end_stream("failed")  # a simulated disconnect, or close(): the connection is about to drop
            raise
        # Counted before the body's last byte, so that a client who has seen the whole stream sees it counted.
        self.stats.end_stream(outcome)
        if outcome != "abandoned":
            await _body(send, b"", more=False)

    # -- /_sim/* -----------------------------------------------------------------------------------------------------

    async def _control(self, method: str, path: str, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        """The simulator's own control endpoints: faults, stats, the request log, settings."""
        route = (method, path)
        if route == ("GET", "/_sim/stats"):
            await _json(send, 200, self.snapshot())
        elif route == ("GET", "/_sim/requests"):
            await _json(send, 200, {"requests": self.stats.recent()})
        elif route == ("POST", "/_sim/reset"):
            self.reset()
            await _json(send, 200, {"ok": True})
        elif route == ("GET", "/_sim/faults"):
            await _json(send, 200, {"pending": self.faults.pending()})
        elif route == ("DELETE", "/_sim/faults"):
            await _json(send, 200, {"cleared": self.faults.clear()})
        elif route == ("POST", "/_sim/faults"):
            try:
                fault, count = faults_mod.parse_fault_request(await _read_json(receive, headers))
                self.faults.push(fault, count)
            except FaultError as exc:
                raise ApiError(400, "invalid_request_error", str(exc)) from exc
            await _json(send, 200, {"queued": count, "fault": fault.to_dict(), "pending": len(self.faults.pending())})
        elif route == ("POST", "/_sim/config"):
            payload = await _read_json(receive, headers)
            try:
                self.speed = check_speed(payload.get("speed") if isinstance(payload, dict) else None)
            except ValueError as exc:
                raise ApiError(400, "invalid_request_error", str(exc)) from exc
            await _json(send, 200, {"speed": self.speed})
        else:
            raise ApiError(404, "not_found_error", f"Not found: {method} {path}")


# -- producers: the bodies of successful requests -------------------------------------------------------------------


async def _send_stream(send: Send, plan: Plan, fault: Fault | None) -> str:
    """A streaming reply, paced, with a mid-stream fault if one was asked for."""
    sent = 0
    for step in stream_steps(plan):
        if fault and step.checkpoint and (sent >= fault.after or step.last_checkpoint):
            if fault.kind == "error_midstream":
                await _body(send, wire.OVERLOADED_EVENT)
                return "failed"
            if fault.kind == "disconnect_midstream":
                raise SimulatedDisconnect()
            await asyncio.sleep(fault.stall_seconds)  # a stall, then the stream resumes
            fault = None
        if step.delay:
            await asyncio.sleep(step.delay)
        await _body(send, step.data)
        sent = step.tokens
    return "completed"


async def _send_whole(send: Send, plan: Plan, fault: Fault | None, request_id: str) -> str:
    """A non-streaming reply: wait as long as generation would take, then send the whole Message."""
    await _sleep(plan.total_seconds())
    if fault and fault.kind == "stall_midstream":
        await asyncio.sleep(fault.stall_seconds)
    payload = json.dumps(plan.message(final=True), separators=(",", ":"), ensure_ascii=False).encode()
    if fault and fault.kind == "disconnect_midstream":
        await send(_start(200, {"content-type": "application/json", "content-length": str(len(payload))}, request_id))
        await _body(send, payload[: len(payload) // 2])
        raise SimulatedDisconnect()
    await _json(send, 200, None, request_id, wire.ratelimit_headers(), _payload=payload)
    return "completed"


async def _send_replay(send: Send, body: bytes) -> str:
    """Recorded SSE bytes, verbatim (fidelity tests, and lesson 02's look at a real stream)."""
    await _body(send, body)
    return "completed"


async def _until_gone(receive: Receive, produce: Producer) -> str:
    """Run a producer while watching for the client going away; returns how the response ended.

    "abandoned" if the client left first (its producer is cancelled: nobody is reading). A producer's exception
    (a simulated disconnect) propagates, so that the server drops the connection.
    """
    producer = asyncio.ensure_future(produce())
    watcher = asyncio.ensure_future(_disconnected(receive))
    try:
        done, _ = await asyncio.wait((producer, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not producer.done():
            producer.cancel()
    return producer.result() if producer in done else "abandoned"


# -- small ASGI helpers ----------------------------------------------------------------------------------------------


def _start(status: int, headers: dict[str, str], request_id: str | None) -> dict[str, Any]:
    all_headers = {**headers, **({"request-id": request_id} if request_id else {})}
    return {
        "type": "http.response.start",
        "status": status,
        "headers": [(k.encode(), v.encode()) for k, v in all_headers.items()],
    }


async def _body(send: Send, data: bytes, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})


async def _json(
    send: Send,
    status: int,
    obj: Any,
    request_id: str | None = None,
    extra: dict[str, str] | None = None,
    _payload: bytes | None = None,
) -> None:
    payload = _payload if _payload is not None else json.dumps(obj, separators=(",", ":")).encode()
    headers = {"content-type": "application/json", "content-length": str(len(payload)), **(extra or {})}
    await send(_start(status, headers, request_id))
    await _body(send, payload, more=False)


async def _fault_response(send: Send, fault: Fault, request_id: str) -> None:
    """The HTTP error a pre-stream fault stands for, with the retry headers the real API sends."""
    status = faults_mod.PRE_STREAM.get(fault.kind, 529)
    messages = {
        529: "Overloaded",
        429: "This request would exceed your organization's rate limit of 50 requests per minute. "
        "Please try again later.",
        500: "Internal server error",
    }
    extra = {"x-should-retry": "true"}
    if status == 429:
        extra["retry-after"] = f"{fault.retry_after if fault.retry_after is not None else 1:g}"
        extra.update({k: ("0" if k.endswith("-remaining") else v) for k, v in wire.ratelimit_headers().items()})
    elif fault.retry_after is not None:
        extra["retry-after"] = f"{fault.retry_after:g}"
    body = wire.api_error_body(wire.ERROR_TYPES[status], messages[status], request_id)
    await _json(send, status, body, request_id, extra)


def _authenticate(headers: dict[str, str]) -> None:
    """Any key will do, sent either way the SDKs send it; none at all is a 401, as on the real API."""
    bearer = headers.get("authorization", "")
    if not (headers.get("x-api-key", "").strip() or (bearer.startswith("Bearer ") and bearer[7:].strip())):
        raise ApiError(401, "authentication_error", "x-api-key header is required")


def _pop(queue: deque[bytes]) -> bytes | None:
    try:
        return queue.popleft()
    except IndexError:  # empty, or emptied by reset() from another thread since it was looked at
        return None


def _int_header(headers: dict[str, str], name: str) -> int:
    value = headers.get(name, "")
    return int(value) if value.isdigit() else 0


async def _read_json(receive: Receive, headers: dict[str, str]) -> Any:
    """The request body as JSON, within the API's size limit."""
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, "request_too_large", "Request exceeds the maximum allowed number of bytes.")
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, "request_too_large", "Request exceeds the maximum allowed number of bytes.")
        chunks.append(chunk)
        more = message.get("more_body", False)
    raw = b"".join(chunks)
    if not raw.strip():
        raise ApiError(400, "invalid_request_error", "Request body is empty: expected a JSON object")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_request_error", f"Request body is not valid JSON: {exc}") from exc


async def _disconnected(receive: Receive) -> None:
    """Return when the client closes the connection."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _sleep(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)


def _models_query(scope: Scope) -> dict[str, Any]:
    query = parse_qs(scope.get("query_string", b"").decode())
    try:
        limit = int(query.get("limit", ["20"])[0])
    except ValueError as exc:
        raise ApiError(400, "invalid_request_error", "limit: Input should be a valid integer") from exc
    if not 1 <= limit <= 1000:
        raise ApiError(400, "invalid_request_error", "limit: Input should be between 1 and 1000")
    return models_page(limit, query.get("after_id", [None])[0], query.get("before_id", [None])[0])


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
