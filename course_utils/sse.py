"""A small Server-Sent Events (SSE) parser, written to be read.

It follows the WHATWG "event stream interpretation" rules
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation)
and is checked against the decoder inside the `anthropic` SDK (`anthropic._streaming.SSEDecoder`).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["ServerSentEvent", "SSEParser", "parse_sse", "aparse_sse", "encode_event"]

# SSE allows three line endings. Never use str.splitlines() here: it also splits on
# \x0b, \x0c, \x1c, \x85, \u2028... which may legitimately appear inside a JSON payload.
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event: its name, its (possibly multi-line) data, and optional id/retry."""

    event: str | None
    data: str
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        """Decode `data` as JSON (the Messages API always sends one JSON object per event)."""
        return json.loads(self.data)


class SSEParser:
    """Incremental SSE parser: feed it bytes as they arrive, get complete events back."""

    def __init__(self, *, strict_eof: bool = False) -> None:
        """Create a parser; `strict_eof=True` drops an unterminated final event, as the SDK does."""
        self.strict_eof = strict_eof
        # A network chunk can end halfway through a multi-byte character (an emoji is 4 bytes),
        # so bytes go through an incremental decoder that holds back an incomplete sequence.
        # Invalid UTF-8 raises UnicodeDecodeError, as in the SDK.
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._line = ""  # text after the last line ending: a line still being received
        self._after_cr = False  # the last line ended with "\r": a "\n" arriving next belongs to it
        self._event: str | None = None
        self._data: list[str] = []
        self._retry: int | None = None
        self._last_id: str | None = None  # per the spec, the id carries over to later events

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Consume one chunk of bytes and return the events it completed (often none)."""
        return self._consume(self._decoder.decode(chunk))

    def close(self) -> list[ServerSentEvent]:
        """Signal end of stream and return any events still pending.

        A well-formed stream ends with a blank line, so there is normally nothing left.
        If the last event lacks its blank line, the WHATWG spec and the SDK's decoder
        both *silently drop it*. By default we are more forgiving and dispatch it;
        with `strict_eof=True` we drop it too, exactly like the SDK.
        """
        events = self._consume(self._decoder.decode(b"", final=True))  # raises on a cut-off character
        if self._line:  # a final line with no line ending at all
            self._process_line(self._line)
            self._line = ""
        pending = self._take_event()
        if pending is not None and not self.strict_eof:
            events.append(pending)
        return events

    def _consume(self, text: str) -> list[ServerSentEvent]:
        """Split decoded text into complete lines and process each one."""
        if not text:  # an empty chunk, or only part of a character: keep all state as it is
            return []
        if self._after_cr and text.startswith("\n"):
            # A chunk boundary fell between the "\r" and "\n" of a CRLF: that line was already
            # processed when we saw "\r", so this "\n" must not count as a second, empty line.
            text = text[1:]
        buffer = self._line + text
        events: list[ServerSentEvent] = []
        start = 0
        for match in _LINE_END.finditer(buffer):
            event = self._process_line(buffer[start : match.start()])
            if event is not None:
                events.append(event)
            start = match.end()
        self._line = buffer[start:]
        self._after_cr = buffer.endswith("\r")
        return events

    def _process_line(self, line: str) -> ServerSentEvent | None:
        """Apply one line to the pending event; a blank line dispatches it."""
        if not line:
            return self._take_event()
        if line.startswith(":"):  # a comment, used by servers as a keep-alive
            return None
        # No colon means the whole line is the field name and the value is empty.
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")  # exactly one space, so "data:  x" keeps " x"
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:  # the spec ignores ids containing NULL
                self._last_id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():  # the spec accepts digits only
                self._retry = int(value)
        # Any other field name is ignored, so servers can add fields without breaking clients.
        return None

    def _take_event(self) -> ServerSentEvent | None:
        """Return the pending event and start a new one; no data lines means no event (WHATWG)."""
        event = None
        if self._data:
            # An empty "event:" counts as no name, as in the SDK (browsers call it "message").
            event = ServerSentEvent(
                event=self._event or None,
                data="\n".join(self._data),
                id=self._last_id,
                retry=self._retry,
            )
        self._event, self._data, self._retry = None, [], None
        return event


def parse_sse(chunks: Iterable[bytes], *, strict_eof: bool = False) -> Iterator[ServerSentEvent]:
    """Parse an iterable of byte chunks (e.g. `response.iter_bytes()`) into events."""
    parser = SSEParser(strict_eof=strict_eof)
    for chunk in chunks:
        yield from parser.feed(chunk)
    yield from parser.close()


async def aparse_sse(chunks: AsyncIterable[bytes], *, strict_eof: bool = False) -> AsyncIterator[ServerSentEvent]:
    """Async twin of `parse_sse`, for `response.aiter_bytes()`."""
    parser = SSEParser(strict_eof=strict_eof)
    async for chunk in chunks:
        for event in parser.feed(chunk):
            yield event
    for event in parser.close():
        yield event


def encode_event(event: str, data: Any) -> bytes:
    """Frame one event as `event: NAME\\ndata: JSON\\n\\n`, in UTF-8 (a str `data` is sent as-is)."""
    if _LINE_END.search(event):
        raise ValueError(f"an event name cannot contain a line break: {event!r}")
    if not isinstance(data, str):
        # Compact JSON, like the real API; ensure_ascii=False sends "é" as 2 bytes, not "\u00e9".
        data = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    # JSON never contains a raw line break, but a str might: each line needs its own "data:".
    data_lines = "".join(f"data: {line}\n" for line in _LINE_END.split(data))
    return f"event: {event}\n{data_lines}\n".encode()
