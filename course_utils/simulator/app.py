"""The simulator's HTTP surface: a plain ASGI app, so every byte and every disconnect is under its control."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from contextlib import suppress
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs

from . import faults as faults_mod
from . import wire
from .faults import Fault, FaultError, FaultQueue
from .models import dated_id, model_info, known_models, models_page
from .plan import Plan, make_plan, stream_steps
from .replies import compose, request_seed
from .stats import Stats
from .tokens import count_request_tokens
from .validation import ApiError, validate_count_tokens, validate_messages

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

MAX_BODY_BYTES = 32 * 1024 * 1024  # the real API's request size limit
SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}


class SimulatedDisconnect(Exception):
    """Raised inside a response to make the server drop the connection, as a network failure would."""


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
        self.replays: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"].rstrip("/") or "/"
        request_id = "req_01" + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")
        try:
            if path.endswith("/v1/messages") and method == "POST":
                await self._messages(headers, receive, send, request_id)
            elif path.endswith("/v1/messages/count_tokens") and method == "POST":
                body = validate_count_tokens(await _read_json(receive, headers))
                await _json(send, 200, {"input_tokens": count_request_tokens(body)}, request_id)
            elif path.endswith("/v1/models") and method == "GET":
                await _json(send, 200, _models_query(scope), request_id)
            elif "/v1/models/" in path and method == "GET":
                model = path.rsplit("/", 1)[1]
                if model not in known_models():
                    raise ApiError(404, "not_found_error", f"model: {model}")
                await _json(send, 200, model_info(model), request_id)
            elif path.startswith("/_sim/"):
                await self._control(method, path, receive, send, headers)
            elif path == "/" and method == "GET":
                await _json(send, 200, {"simulator": "Messages API simulator", "docs": "course_utils.simulator"})
            else:
                raise ApiError(404, "not_found_error", f"Not found: {method} {path}")
        except ApiError as err:
            await _json(send, err.status, wire.error_body(err.error_type, err.message, request_id), request_id)

    # -- /v1/messages ------------------------------------------------------------------------------------------------

    async def _messages(self, headers: dict[str, str], receive: Receive, send: Send, request_id: str) -> None:
        self.stats.add("requests")
        entry: dict[str, Any] = {"path": "/v1/messages", "retry_count": int(headers.get("x-stainless-retry-count", 0)
                                                                          or 0)}
        try:
            if not (headers.get("x-api-key") or headers.get("authorization", "").startswith("Bearer ")):
                raise ApiError(401, "authentication_error", "x-api-key header is required")
            body = validate_messages(await _read_json(receive, headers))
            entry.update(model=body["model"], stream=bool(body.get("stream")))
            try:
                fault = faults_mod.fault_from_headers(headers) or self.faults.pop()
            except FaultError as exc:
                raise ApiError(400, "invalid_request_error", str(exc)) from exc
            entry["fault"] = fault.kind if fault else None
            if fault:
                self.stats.add("faults_injected")
            if fault and fault.pre_stream:
                entry["status"] = faults_mod.PRE_STREAM[fault.kind]
                await _fault_response(send, fault, request_id)
                return
            if self.replays:
                entry["status"] = 200
                await self._stream_bytes(send, receive, [self.replays.pop(0)], request_id)
                return
            plan = make_plan(body, compose(body), model=dated_id(body["model"]), speed=self.speed,
                             msg_id=wire.make_id("msg_", f"{request_seed(body)}"))
            entry["status"] = 200
            if body.get("stream"):
                await self._stream(send, receive, plan, fault, request_id)
            else:
                await self._whole(send, plan, fault, request_id)
        except ApiError as err:
            entry["status"] = err.status
            raise
        finally:
            self.stats.log(entry)

    async def _whole(self, send: Send, plan: Plan, fault: Fault | None, request_id: str) -> None:
        """A non-streaming reply: wait as long as generation would take, then send the whole Message."""
        await _sleep(plan.total_seconds())
        if fault and fault.kind == "error_midstream":
            # Without a stream to carry it, the same overload is a plain 529.
            await _fault_response(send, Fault("overloaded"), request_id)
            return
        if fault and fault.kind == "stall_midstream":
            await asyncio.sleep(fault.stall_seconds)
        payload = json.dumps(plan.message(final=True), separators=(",", ":"), ensure_ascii=False).encode()
        if fault and fault.kind == "disconnect_midstream":
            await send(_start(200, {"content-type": "application/json", "content-length": str(len(payload))},
                              request_id))
            await send({"type": "http.response.body", "body": payload[: len(payload) // 2], "more_body": True})
            raise SimulatedDisconnect()
        await _json(send, 200, plan.message(final=True), request_id, _payload=payload)

    async def _stream(self, send: Send, receive: Receive, plan: Plan, fault: Fault | None, request_id: str) -> None:
        """A streaming reply, paced, with a mid-stream fault if one was asked for."""

        async def produce() -> str:
            sent, pending = 0, fault
            for step in stream_steps(plan):
                if pending and step.checkpoint and sent >= pending.after:
                    if pending.kind == "error_midstream":
                        error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
                        await _body(send, wire.sse("error", error))
                        await _body(send, b"", more=False)
                        return "failed"
                    if pending.kind == "disconnect_midstream":
                        raise SimulatedDisconnect()
                    await asyncio.sleep(pending.stall_seconds)  # a stall, then the stream resumes
                    pending = None
                if step.delay:
                    await asyncio.sleep(step.delay)
                await _body(send, step.data)
                sent = step.tokens
            await _body(send, b"", more=False)
            return "completed"

        await self._run_stream(send, receive, produce, request_id)

    async def _stream_bytes(self, send: Send, receive: Receive, chunks: list[bytes], request_id: str) -> None:
        """Replay recorded SSE bytes verbatim (for fidelity tests and lesson 02)."""

        async def produce() -> str:
            for chunk in chunks:
                await _body(send, chunk)
            await _body(send, b"", more=False)
            return "completed"

        await self._run_stream(send, receive, produce, request_id)

    async def _run_stream(self, send: Send, receive: Receive, produce: Callable[[], Awaitable[str]],
                          request_id: str) -> None:
        """Run a stream's producer while watching for the client going away, and count how it ended."""
        await send(_start(200, {**SSE_HEADERS, **wire.ratelimit_headers()}, request_id))
        self.stats.add("streams_open")
        outcome = "abandoned"
        producer = asyncio.ensure_future(produce())
        watcher = asyncio.ensure_future(_disconnected(receive))
        try:
            await asyncio.wait({producer, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if producer.done():
                outcome = "failed"  # stays so if the producer raised (a simulated disconnect)
                outcome = producer.result()
            else:
                producer.cancel()
                with suppress(asyncio.CancelledError, OSError):
                    await producer
        except OSError:
            outcome = "abandoned"
        finally:
            watcher.cancel()
            if not producer.done():
                producer.cancel()
            self.stats.add("streams_open", -1)
            self.stats.add(f"streams_{outcome}")

    # -- /_sim/* -----------------------------------------------------------------------------------------------------

    async def _control(self, method: str, path: str, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        """The simulator's own control endpoints: faults, stats, the request log, settings."""
        route = (method, path)
        if route == ("GET", "/_sim/stats"):
            await _json(send, 200, {**self.stats.snapshot(), "faults_pending": len(self.faults.pending()),
                                    "speed": self.speed})
        elif route == ("GET", "/_sim/requests"):
            await _json(send, 200, {"requests": self.stats.recent()})
        elif route == ("POST", "/_sim/reset"):
            self.stats.reset()
            self.faults.clear()
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
            speed = payload.get("speed") if isinstance(payload, dict) else None
            if not isinstance(speed, (int, float)) or isinstance(speed, bool) or speed < 0:
                raise ApiError(400, "invalid_request_error", "speed: Input should be a number >= 0")
            self.speed = float(speed)
            await _json(send, 200, {"speed": self.speed})
        else:
            raise ApiError(404, "not_found_error", f"Not found: {method} {path}")


# -- small ASGI helpers ----------------------------------------------------------------------------------------------


def _start(status: int, headers: dict[str, str], request_id: str | None) -> dict[str, Any]:
    all_headers = {**headers, **({"request-id": request_id} if request_id else {})}
    return {"type": "http.response.start", "status": status,
            "headers": [(k.encode(), v.encode()) for k, v in all_headers.items()]}


async def _body(send: Send, data: bytes, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})


async def _json(send: Send, status: int, obj: Any, request_id: str | None = None, extra: dict[str, str] | None = None,
                _payload: bytes | None = None) -> None:
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
    body = wire.error_body(wire.ERROR_TYPES[status], messages[status], request_id)
    await _json(send, status, body, request_id, extra)


async def _read_json(receive: Receive, headers: dict[str, str]) -> Any:
    """The request body as JSON, within the API's size limit."""
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, "request_too_large", "Request exceeds the maximum allowed number of bytes.")
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError()
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
