"""Resumable answers (lesson 08, with Redis): an answer is generated into a Redis stream, and read from it.

The worker that receives `POST /api/chat` opens the upstream and starts a producer task that owns it: it relays the
upstream's bytes as lesson 06 does (numbering every event `id: <answer>:<n>`) and appends each upstream read to the
Redis stream `course:answer:<answer>` as one entry. Every reader, the first connection included, reads that stream;
so a page that lost its connection asks any worker for `GET /api/answers/<answer>` with `Last-Event-ID: <answer>:<n>`
and gets events n+1... of the same answer, never a second generation.

What a disconnect means changes, so it is explicit:
- Stop is a request of its own (`POST /api/answers/<answer>/cancel`, to any worker): it reaches the producer through
  Redis pub/sub and closes the upstream at once.
- A dropped connection is not a Stop: the producer keeps generating while some reader is here, and closes the upstream
  once none has been for `resume_grace` seconds. A reader is here while it is connected and not stuck handing one
  chunk to its client for the whole grace period (a client that stopped reading is gone too). Each worker refreshes a
  key with that expiry for the answers it has readers of; the producer's worker also asks its own readers directly,
  so a busy event loop that refreshed late never ends an answer somebody is reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from .deploy import Turn
from .errors import ChatError
from .relay import frame, relay

log = logging.getLogger("course_utils.chat_app")

CHANNEL = "course:cancel"  # one channel for every worker: a cancel names its answer
KEEP_SECONDS = 600  # a finished answer stays readable this long (a slow reconnect still gets its end)
ENDINGS = (b"done", b"error")


def _key(answer: str, part: str = "") -> str:
    return f"course:answer:{answer}{part}"


def parse_last_event_id(answer: str, header: str | None) -> int:
    """The number of the last event a reader has, from `Last-Event-ID: <answer>:<n>` (none: 0)."""
    if not header:
        return 0
    prefix, _, number = header.strip().rpartition(":")
    if prefix != answer or not number.isdigit():
        raise ChatError(400, "invalid_request_error", f"Last-Event-ID must look like {answer}:<number>.")
    return int(number)


def _is_last(chunk: bytes) -> bool:
    """True if the chunk ends with the answer's `done` or `error` (always the last event of its chunk)."""
    start = chunk.rfind(b"\nevent: ") + 8
    return chunk.startswith(ENDINGS, start)


@dataclass(eq=False)
class _Reader:
    """One connection reading an answer on this worker."""

    sending_since: float | None = None  # loop time it handed a chunk to its client, until the client took it


class Answers:
    """The producers running on this worker, and reading any worker's answers back from Redis."""

    def __init__(self, redis: Any, grace: float) -> None:
        """Use the app's Redis client; `grace` is how long an answer with no reader keeps generating."""
        self.redis, self.grace = redis, grace
        self.beat = max(0.05, min(1.0, grace / 4))  # how often this worker says "still here", and the producer checks
        self.producers: dict[str, asyncio.Task[None]] = {}
        self.readers: dict[str, set[_Reader]] = {}
        self._why: dict[str, str] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Listen for cancels from every worker, and say which answers this worker's readers are here for."""
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(CHANNEL)
        self._tasks = [asyncio.create_task(self._listen(pubsub)), asyncio.create_task(self._heartbeat())]

    def here(self, answer: str) -> bool:
        """True if a reader on this worker is reading `answer` (connected, and its client not stuck for the grace)."""
        now = asyncio.get_running_loop().time()
        return any(r.sending_since is None or now - r.sending_since < self.grace for r in self.readers.get(answer, ()))

    async def _seen(self, answers: list[str]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for answer in answers:
                pipe.set(_key(answer, ":seen"), 1, px=int(self.grace * 1000))
            await pipe.execute()

    async def _heartbeat(self) -> None:
        # One round trip per beat for all of this worker's readers, however many; a failed beat is retried next beat.
        while True:
            await asyncio.sleep(self.beat)
            if answers := [answer for answer in self.readers if self.here(answer)]:
                try:
                    await self._seen(answers)
                except Exception:
                    log.warning("could not tell Redis this worker's readers are here", exc_info=True)

    async def _listen(self, pubsub: Any) -> None:
        try:
            async for message in pubsub.listen():
                answer = message["data"].decode()
                if (task := self.producers.get(answer)) is not None:
                    self._why.setdefault(answer, "stopped")
                    task.cancel()  # the producer's exit stack closes the upstream now
        except Exception:
            log.exception("the cancel listener failed")
            raise
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def close(self) -> None:
        """Shutdown: end the answers still generating here (readers get an error event), stop listening."""
        for answer, task in list(self.producers.items()):
            self._why.setdefault(answer, "shutdown")
            task.cancel()
        await asyncio.gather(*self.producers.values(), return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def begin(self, turn: Turn, stack: AsyncExitStack) -> str:
        """Start generating `turn` (its upstream open in `stack`, now the producer's) and return the answer's id."""
        answer = secrets.token_urlsafe(12)
        turn.outcome.ids = answer
        async with self.redis.pipeline(transaction=False) as pipe:
            await (
                pipe.set(_key(answer, ":owner"), turn.client, ex=KEEP_SECONDS)
                .set(_key(answer, ":seen"), 1, px=int(self.grace * 1000))
                .execute()
            )
        self.producers[answer] = asyncio.create_task(self._produce(answer, turn, stack.pop_all()))
        return answer

    async def _produce(self, answer: str, turn: Turn, stack: AsyncExitStack) -> None:
        key = _key(answer)
        pending: list[tuple[bytes, int]] = []  # (chunk, its last event number) read but not yet in Redis
        written = 0  # the last event number in Redis
        wrote, lock = asyncio.Event(), asyncio.Lock()
        watchdog = asyncio.create_task(self._watch(answer))

        async def write(last: bool = False) -> None:
            """Append what is pending as one entry: while one XADD is in flight the next reads pile up, so a busy
            worker makes fewer, larger entries instead of falling behind (one round trip per read otherwise)."""
            nonlocal written
            async with lock:  # one XADD at a time, in order: entry ids must grow
                if not pending:
                    return
                batch = b"".join(chunk for chunk, _ in pending)
                first, seq = written + 1, pending[-1][1]
                pending.clear()
                await self.redis.xadd(key, {"f": batch, "a": first, "end": int(last or _is_last(batch))}, id=f"0-{seq}")
                written = seq

        async def writer() -> None:
            while True:
                await wrote.wait()
                wrote.clear()
                await write()

        flusher = asyncio.create_task(writer())
        try:
            # relay() is an async generator, typed as the iterator it returns; the response is set by now.
            async with stack, contextlib.aclosing(relay(turn.response, turn.outcome)) as frames:  # type: ignore[arg-type,type-var]
                async for chunk in frames:
                    pending.append((chunk, turn.outcome.seq))
                    wrote.set()
            await write()  # whatever the writer had not taken yet, the answer's end included
        except asyncio.CancelledError:
            why = self._why.get(answer, "stopped")
            log.info("answer %s closed upstream: %s", answer, why)
            messages = {
                "stopped": "Stopped.",
                "abandoned": "Nobody came back for this answer in time.",
                "shutdown": "The server restarted mid-answer. Try again.",
            }
            turn.outcome.seq += 1
            pending.append(
                (
                    b"id: %s:%d\n%s"
                    % (answer.encode(), turn.outcome.seq, frame("error", {"type": why, "message": messages[why]})),
                    turn.outcome.seq,
                )
            )
            with contextlib.suppress(Exception):
                await write(last=True)
        finally:
            flusher.cancel()
            watchdog.cancel()
            self.producers.pop(answer, None)
            self._why.pop(answer, None)
            with contextlib.suppress(Exception):
                await self.redis.expire(key, KEEP_SECONDS)
            await turn.finish()

    async def _watch(self, answer: str) -> None:
        """Close the upstream once no reader has been seen for the grace period."""
        while True:
            await asyncio.sleep(self.beat)
            if not await self.redis.exists(_key(answer, ":seen")):
                if self.here(answer):  # this worker's own reader: the key expired only because the loop was busy
                    continue
                if (task := self.producers.get(answer)) is not None:
                    self._why.setdefault(answer, "abandoned")
                    task.cancel()
                return

    async def owned(self, answer: str, client: str) -> None:
        """404 unless `answer` exists and belongs to `client` (another client's answer is no one's business)."""
        owner = await self.redis.get(_key(answer, ":owner"))
        if owner is None or owner.decode() != client:
            raise ChatError(404, "not_found_error", "No such answer here (it may have expired).")

    async def cancel(self, answer: str) -> None:
        """Stop an answer, on whichever worker generates it."""
        await self.redis.publish(CHANNEL, answer)

    async def read(self, answer: str, after: int = 0) -> AsyncIterator[bytes]:
        """The answer's events after number `after`, as they are generated, up to and including its last one."""
        key, last = _key(answer), f"0-{after}"
        loop = asyncio.get_running_loop()
        reader = _Reader()
        self.readers.setdefault(answer, set()).add(reader)
        try:
            await self._seen([answer])  # a resume may come just before the key expires: here from now on
            while True:
                reply = await self.redis.xread({key: last}, count=256, block=int(self.beat * 1000))
                if not reply:
                    continue
                chunks, end = [], False
                for entry, fields in reply[0][1]:
                    chunk, first = fields[b"f"], int(fields[b"a"])
                    if first <= after:  # the reader has the start of this entry: drop the events it has
                        kept = chunk.split(b"\n\n")[after - first + 1 :]
                        chunk = b"\n\n".join(kept)
                    chunks.append(chunk)
                    last, end = entry.decode(), fields[b"end"] == b"1"
                    if end:
                        break
                reader.sending_since = loop.time()
                yield b"".join(chunks)
                reader.sending_since = None
                if end:
                    return
        finally:  # no await in here: it runs whole even when the response is cancelled
            readers = self.readers.get(answer, set())
            readers.discard(reader)
            if not readers:
                self.readers.pop(answer, None)


def answer_json(answer: str) -> str:
    """The JSON the page gets back from a cancel."""
    return json.dumps({"answer_id": answer, "cancelled": True})
