"""The upstream's HTTP/1.1 under the SDK: a small httpx2 transport on asyncio's own protocol callbacks.

The SDK (`anthropic.AsyncAnthropic`) still builds every request, retries it and maps its statuses to exceptions; httpx2
still adds its headers, timeouts and event hooks. Only the layer below, httpcore2 + h11 + anyio, is replaced: it
costs a relay more CPU than anything else it does (about 3 ms per request and a tenth of a millisecond per upstream
read, measured in `benchmarks/README.md`), because it is general (HTTP/2, proxies, trio, a cancel scope and several
generator layers per read). A relay needs much less: one origin, HTTP/1.1, kept-alive connections, a bounded pool.

What it keeps of httpcore2's contract, because the app relies on it:
- a full pool raises `httpx2.PoolTimeout` after the pool timeout (the app answers 503);
- connect, read and pool timeouts from the request's `timeout` extension (a silent upstream is `httpx2.ReadTimeout`);
- a refused or failed connection is `httpx2.ConnectError`, a connection cut mid-answer `httpx2.RemoteProtocolError`
  (the SDK retries the first before any byte, the relay turns the second into an `error` event);
- closing a response before its end closes its connection at once: the upstream stops generating;
- a connection is reused only after a complete answer that did not say `Connection: close`.
"""

from __future__ import annotations

import asyncio
import select
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator

import httpx2

HEAD_LIMIT = 64 * 1024  # a status line and headers longer than this are not an API's answer
HIGH_WATER = 256 * 1024  # unread body bytes at which the socket stops being read (the browser reads slower)
NO_BODY = frozenset((204, 304))


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: writes a request, parses the answer's head and body as bytes arrive."""

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: tuple[bytes, bytes, int]) -> None:
        self.loop, self.origin = loop, origin
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.head_request = False  # an answer to HEAD has headers only
        self._reset()

    def _reset(self) -> None:
        self.head: tuple[int, bytes, list[tuple[bytes, bytes]]] | None = None
        self.reusable = True
        self.done = False  # the whole body has arrived
        self.error: Exception | None = None
        self._buffer = bytearray()  # bytes received and not parsed yet (head, chunk sizes)
        self._body: list[bytes] = []  # body bytes ready for the reader
        self._body_size = 0
        self._length: int | None = None  # bytes left of a Content-Length body, or of the current chunk
        self._chunked = False
        self._chunk_state = "size"  # size, data, data-end, trailers
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False

    # -- asyncio's callbacks --------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:  # the SDK's own socket options: notice a dead peer on a long, quiet stream
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            for name, value in (("TCP_KEEPINTVL", 60), ("TCP_KEEPCNT", 5)):
                if hasattr(socket, name):
                    sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)

    def data_received(self, data: bytes) -> None:
        if self.done or self.error is not None:  # bytes after a complete answer: this connection is not reusable
            self.reusable = False
            return
        try:
            if self.head is None:
                self._buffer += data
                if not self._parse_head():
                    return
            elif self._chunked or self._length is None:
                self._buffer += data
            else:
                self._take(data)
            if self._chunked:
                self._parse_chunks()
            elif self._length is None:  # no length: the body ends when the connection does
                self._take(bytes(self._buffer))
                self._buffer.clear()
        except httpx2.RemoteProtocolError as exc:
            self._fail(exc)
            return
        if self._body_size > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        if not self.done and self.error is None:
            if self.head is not None and self._length is None and not self._chunked:
                self.done = True  # a body delimited by the end of the connection: this is its end
            else:
                self._fail(
                    httpx2.RemoteProtocolError(
                        "the server closed the connection before the end of its answer"
                        if self.head is not None
                        else "the server disconnected without sending a response"
                    )
                )
        self._wake()

    # -- parsing --------------------------------------------------------------------------------------------------

    def _parse_head(self) -> bool:
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end == -1:
                if len(self._buffer) > HEAD_LIMIT:
                    raise httpx2.RemoteProtocolError("the answer's headers are too long")
                return False
            lines = bytes(self._buffer[:end]).split(b"\r\n")
            del self._buffer[: end + 4]
            version, _, rest = lines[0].partition(b" ")
            code, _, reason = rest.partition(b" ")
            if not version.startswith(b"HTTP/1.") or not code.isdigit():
                raise httpx2.RemoteProtocolError(f"not an HTTP/1.1 status line: {lines[0][:80]!r}")
            status = int(code)
            if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
                continue
            headers = []
            for line in lines[1:]:
                name, colon, value = line.partition(b":")
                if not colon or not name or name != name.strip():
                    raise httpx2.RemoteProtocolError(f"malformed header line: {line[:80]!r}")
                headers.append((name, value.strip()))
            self.head = (status, reason, headers)
            for name, value in headers:
                lower = name.lower()
                if lower == b"transfer-encoding" and value.lower().endswith(b"chunked"):
                    self._chunked = True
                elif lower == b"content-length" and not self._chunked:
                    if not value.isdigit():
                        raise httpx2.RemoteProtocolError(f"bad Content-Length: {value[:40]!r}")
                    self._length = int(value)
                elif lower == b"connection" and b"close" in value.lower():
                    self.reusable = False
            if status in NO_BODY or self.head_request:
                self._chunked, self._length = False, 0
            if self._chunked:
                self._length = 0
            elif self._length is None:
                self.reusable = False  # read to the end of the connection
            elif self._length == 0:
                self.done = True
            if not self._chunked and self._length:
                rest_bytes = bytes(self._buffer)
                self._buffer.clear()
                if rest_bytes:
                    self._take(rest_bytes)
            return True

    def _take(self, data: bytes) -> None:
        """Body bytes of a Content-Length answer (or one read to the close)."""
        if self._length is not None:
            if len(data) > self._length:
                self.reusable = False  # more than announced: deliver what was announced only
                data = data[: self._length]
            self._length -= len(data)
            if self._length == 0:
                self.done = True
        if data:
            self._body.append(data)
            self._body_size += len(data)

    def _parse_chunks(self) -> None:
        buffer = self._buffer
        while buffer:
            if self._chunk_state == "data":
                piece = bytes(buffer[: self._length])
                del buffer[: len(piece)]
                self._length -= len(piece)  # type: ignore[operator]
                self._body.append(piece)
                self._body_size += len(piece)
                if self._length == 0:
                    self._chunk_state = "data-end"
                continue
            end = buffer.find(b"\r\n")
            if end == -1:
                if len(buffer) > HEAD_LIMIT:
                    raise httpx2.RemoteProtocolError("a chunk header is too long")
                return
            line = bytes(buffer[:end])
            del buffer[: end + 2]
            if self._chunk_state == "data-end":
                if line:
                    raise httpx2.RemoteProtocolError("a chunk did not end with CRLF")
                self._chunk_state = "size"
            elif self._chunk_state == "size":
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise httpx2.RemoteProtocolError(f"bad chunk size: {line[:40]!r}") from None
                if size == 0:
                    self._chunk_state = "trailers"
                else:
                    self._chunk_state, self._length = "data", size
            elif not line:  # the blank line after the (usually absent) trailers: the body is complete
                self.done = True
                if buffer:
                    self.reusable = False
                return

    # -- the reader's side ----------------------------------------------------------------------------------------

    def _fail(self, exc: Exception) -> None:
        if self.error is None:
            self.error = exc
        self.reusable = False
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _wait(self, timeout: float | None) -> None:
        # One timer per wait, not a cancel scope: on uvloop that is a small C object, cheap at one per upstream event.
        self._waiter = waiter = self.loop.create_future()
        timer = None if timeout is None else self.loop.call_later(timeout, _time_out, waiter, timeout)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    async def response_head(self, timeout: float | None) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """Wait for the answer's status line and headers."""
        while self.head is None:
            if self.error is not None:
                raise self.error
            await self._wait(timeout)
        return self.head

    async def read(self, timeout: float | None) -> bytes:
        """The body bytes that have arrived (waiting for some), b"" at the end; raises the connection's failure."""
        while not self._body:
            if self.error is not None:
                raise self.error
            if self.done:
                return b""
            await self._wait(timeout)
        data = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body.clear()
        self._body_size = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    def send(self, head: bytes, body: bytes, *, head_request: bool = False) -> None:
        """Start an answer: write the request (the kernel buffers it; the read timeout covers the wait)."""
        self._reset()
        self.head_request = head_request
        self.transport.write(head + body if len(body) < 16384 else head)  # type: ignore[union-attr]
        if len(body) >= 16384:
            self.transport.write(body)  # type: ignore[union-attr]

    def readable(self) -> bool:
        """True if an idle connection has something to read: the server's close (or stray bytes) not yet delivered.

        A server closes idle connections after its own keep-alive timeout; the close can be on its way while the
        pool picks the connection, and a request written then is lost. Asking the socket first (httpcore does the
        same) costs one system call, and only when a connection is reused.
        """
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        if sock is None:
            return False
        try:
            return bool(select.select([sock], [], [], 0)[0])
        except (OSError, ValueError):  # already closed
            return True

    def close(self) -> None:
        """Close the connection now: the upstream sees its reader leave."""
        self.reusable = False
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _time_out(waiter: asyncio.Future[None], timeout: float) -> None:
    if not waiter.done():
        waiter.set_exception(httpx2.ReadTimeout(f"no data from the upstream in {timeout:g} s"))


class _Body(httpx2.AsyncByteStream):
    """A response body read straight from its connection; closing it returns the connection or closes it."""

    def __init__(self, pool: UpstreamTransport, conn: _Connection, read_timeout: float | None) -> None:
        self._pool, self._conn, self._timeout = pool, conn, read_timeout
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn, timeout = self._conn, self._timeout
        while chunk := await conn.read(timeout):
            yield chunk

    async def aclose(self) -> None:
        if not self._released:
            self._released = True
            self._pool._release(self._conn)


class UpstreamTransport(httpx2.AsyncBaseTransport):
    """HTTP/1.1 over a pool of at most `max_connections` connections at once, idle ones kept up to
    `max_keepalive_connections` for `keepalive_expiry` seconds."""

    def __init__(
        self,
        max_connections: int = 1000,
        max_keepalive_connections: int = 1000,
        keepalive_expiry: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.max_connections, self.max_keepalive = max_connections, max_keepalive_connections
        self.keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._idle: dict[tuple[bytes, bytes, int], list[_Connection]] = {}
        self._in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    def _ssl(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = httpx2.create_ssl_context()
        return self._ssl_context

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send `request` on a pooled connection; return once the answer's headers have arrived."""
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        url = request.url
        scheme, host = url.raw_scheme, url.raw_host
        port = url.port or (443 if scheme == b"https" else 80)
        body = await request.aread()
        if "transfer-encoding" in request.headers:  # a body of unknown length, read whole here: one chunk and the end
            body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
        target = url.raw_path
        lines = [b"%s %s HTTP/1.1\r\n" % (request.method.encode(), target)]
        lines += [b"%s: %s\r\n" % (name, value) for name, value in request.headers.raw]
        lines.append(b"\r\n")
        head = b"".join(lines)
        await self._acquire(timeouts.get("pool"))
        conn = None
        try:
            conn = await self._connection((scheme, host, port), request, timeouts.get("connect"))
            conn.send(head, body, head_request=request.method == "HEAD")
            status, reason, headers = await conn.response_head(timeouts.get("read"))
        except BaseException:
            if conn is not None:
                conn.close()
            self._release(conn)
            raise
        return httpx2.Response(
            status,
            headers=headers,
            stream=_Body(self, conn, timeouts.get("read")),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
        )

    async def _acquire(self, timeout: float | None) -> None:
        """A slot among `max_connections`, waiting for one at most `timeout` s (then `httpx2.PoolTimeout`)."""
        if self._closed:
            raise RuntimeError("the transport is closed")
        if self._in_use < self.max_connections and not self._waiters:
            self._in_use += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)  # the slot is handed over by `_release`, already counted
        except TimeoutError:
            raise httpx2.PoolTimeout("every upstream connection is in use") from None
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._release(None)  # handed a slot at the moment it gave up: pass it on
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _release(self, conn: _Connection | None) -> None:
        """Give back a slot; keep `conn` for reuse if its answer ended cleanly, else close it."""
        if conn is not None:
            if conn.done and conn.reusable and not conn.closed and not self._closed:
                origin_idle = self._idle.setdefault(conn.origin, [])
                if len(origin_idle) < self.max_keepalive:
                    conn.idle_since = conn.loop.time()
                    origin_idle.append(conn)
                else:
                    conn.close()
            else:
                conn.close()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot goes to the longest waiter, still counted as in use
                return
        self._in_use -= 1

    async def _connection(
        self, origin: tuple[bytes, bytes, int], request: httpx2.Request, timeout: float | None
    ) -> _Connection:
        loop = asyncio.get_running_loop()
        idle = self._idle.get(origin)
        now = loop.time()
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to have been closed by the server
            if not conn.closed and now - conn.idle_since < self.keepalive_expiry and not conn.readable():
                return conn
            conn.close()
        scheme, host, port = origin
        conn = _Connection(loop, origin)
        tls = scheme == b"https"
        server_hostname = request.extensions.get("sni_hostname") or host.decode()
        try:
            async with asyncio.timeout(timeout):
                await loop.create_connection(
                    lambda: conn,
                    host.decode(),
                    port,
                    ssl=self._ssl() if tls else None,
                    server_hostname=server_hostname if tls else None,
                )
        except TimeoutError:
            conn.close()
            raise httpx2.ConnectTimeout(f"no connection to {host.decode()}:{port} in {timeout} s") from None
        except OSError as exc:
            raise httpx2.ConnectError(str(exc) or type(exc).__name__) from exc
        return conn

    async def aclose(self) -> None:
        """Close every idle connection; connections in use close with their responses."""
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
