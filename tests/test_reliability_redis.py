"""Load on a deployment: 200 chats across two workers sharing one Redis, clients dropping and reconnecting at random.

A client that drops reconnects to the *other* worker with `Last-Event-ID`; every chat that is not stopped must end
with exactly the reply the SDK gets directly (no event lost, none twice, ids 1..n), some clients press Stop, some
leave for good. Afterwards no upstream stream is open: stopped ones closed at once, abandoned ones after the grace.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx
import pytest

from course_utils.chat_app import AppServer, ChatSettings, create_app
from course_utils.simulator import Simulator
from course_utils.sse import aparse_sse

from conftest import MODEL
from test_deploy import start_redis
from test_reliability_load import CHATS, PROMPTS, chat_body, direct_replies

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
GRACE = 5.0  # longer than a reconnect takes on a loaded machine; leavers cost 5 s of generation
WATCHDOG = 150.0
# Clients that stop or leave ask for a long answer: still being generated when they go, so closing it is observable.
LONG = {"messages": [{"role": "user", "content": "Write 4000 words about the ocean"}], "max_tokens": 400}


def body_of(chat: Chat) -> dict[str, Any]:
    """The chat's request: a long answer for those that stop or leave, the load test's prompts for the others."""
    return LONG if chat.plan in ("stop", "leave") else chat_body(chat.i)


async def long_reply(base_url: str) -> list[str]:
    """The long answer's text deltas, straight from the SDK."""
    async with anthropic.AsyncAnthropic(base_url=base_url, api_key="test-key") as client:
        async with client.messages.stream(model=MODEL, **LONG) as stream:  # type: ignore[arg-type]
            return [text async for text in stream.text_stream]


@dataclass
class Chat:
    """One client: reads to the end, drops and resumes (up to three times), stops, or leaves for good."""

    i: int
    plan: str  # "read" | "resume" | "stop" | "leave"
    drops: list[int] = field(default_factory=list)  # after how many events each drop happens
    ids: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    terminal: tuple[str | None, Any] | None = None


def mix(seed: int) -> list[Chat]:
    """A seeded mix: 40 % read to the end, 40 % drop and resume, 10 % stop, 10 % leave."""
    rng = random.Random(seed)
    chats = []
    for i in range(CHATS):
        roll = rng.random()
        plan = "read" if roll < 0.4 else "resume" if roll < 0.8 else "stop" if roll < 0.9 else "leave"
        drops = (
            sorted(rng.sample(range(1, 15), rng.randint(1, 3)))
            if plan == "resume"
            else [rng.randint(1, 6)]
            if plan in ("stop", "leave")
            else []
        )
        chats.append(Chat(i, plan, drops))
    return chats


async def play(chat: Chat, http: httpx.AsyncClient, workers: list[str]) -> None:
    """Act one chat out: POST to one worker, then resume on the other after each drop."""
    here = chat.i % 2
    request = http.stream("POST", workers[here] + "api/chat", json=body_of(chat))
    answer = None
    drops = list(chat.drops)
    while True:
        async with request as response:
            assert response.status_code == 200, response.status_code
            answer = response.headers["x-answer-id"]
            async for event in aparse_sse(response.aiter_bytes(), strict_eof=True):
                chat.ids.append(int(event.id.rpartition(":")[2]))  # type: ignore[union-attr]
                if event.event == "text":
                    chat.texts.append(event.json()["text"])
                else:
                    chat.terminal = (event.event, event.json())
                    return
                if drops and len(chat.ids) >= drops[0]:
                    drops.pop(0)
                    break  # leave the `async with`: the connection closes mid-answer
            else:
                return
        if chat.plan == "stop":
            await http.post(workers[1 - here] + f"api/answers/{answer}/cancel")
            return
        if chat.plan == "leave":
            return
        here = 1 - here  # reconnect to the other worker, from the last event this client has
        headers = {"last-event-id": f"{answer}:{chat.ids[-1]}"}
        request = http.stream("GET", workers[here] + f"api/answers/{answer}", headers=headers)


@pytest.fixture
def deployment() -> Iterator[tuple[Simulator, list[AppServer]]]:
    """A simulator, one Redis, and two workers on it."""
    with start_redis() as redis_url, Simulator(speed=1) as sim:

        def worker() -> AppServer:
            settings = ChatSettings(
                base_url=sim.base_url, api_key="test-key", read_timeout=10.0, redis_url=redis_url, resume_grace=GRACE
            )
            return AppServer(create_app(settings))

        with worker() as one, worker() as two:
            yield sim, [one, two]


@pytest.mark.parametrize("seed", [20261201])
def test_200_chats_on_two_workers_with_drops_and_resumes(
    deployment: tuple[Simulator, list[AppServer]], seed: int
) -> None:
    sim, apps = deployment
    sim.speed = 0
    expected = asyncio.run(direct_replies(sim.base_url))
    long_texts = asyncio.run(long_reply(sim.base_url))
    sim.reset()
    sim.speed = 1
    chats = mix(seed)

    async def run() -> None:
        limits = httpx.Limits(max_connections=CHATS * 2, max_keepalive_connections=CHATS * 2)
        async with httpx.AsyncClient(limits=limits, timeout=60.0) as http:
            await asyncio.wait_for(
                asyncio.gather(*(play(c, http, [a.url for a in apps]) for c in chats)), timeout=WATCHDOG
            )

    asyncio.run(run())

    assert sim.wait_idle(timeout=GRACE + 30), sim.stats()  # abandoned answers closed after the grace period
    stats = sim.stats()
    assert stats["streams_open"] == 0 and stats["streams_failed"] == 0
    assert stats["requests"] == CHATS  # one generation per chat, however often it reconnected
    stopped_or_left = [c for c in chats if c.plan in ("stop", "leave")]
    stopped = [c for c in chats if c.plan == "stop"]
    # Every Stop closed its upstream mid-answer; a leaver's answer was closed after the grace, or finished in it.
    assert len(stopped) <= stats["streams_abandoned"] <= len(stopped_or_left)
    for chat in chats:
        texts, done = expected[chat.i % len(PROMPTS)]
        assert chat.ids == list(range(1, len(chat.ids) + 1)), chat  # none lost, none twice
        if chat.plan in ("read", "resume"):
            assert chat.terminal == ("done", done), chat
            assert chat.texts == texts, chat
        else:
            assert chat.texts == long_texts[: len(chat.texts)] and chat.terminal is None, chat
    assert sum(len(c.drops) for c in chats if c.plan == "resume") > CHATS // 3
    for app in apps:
        assert httpx.get(app.url + "healthz", timeout=5).json() == {"ok": True}
