"""Load: 200 chats at once through `/api/chat`, with clients leaving at random moments.

Afterwards no upstream stream may be left open, and every chat that ran to the end must carry, delta for delta and
byte for byte, the reply the same request gets straight from the SDK. Real HTTP on loopback throughout: the real
SDK inside the app, the simulator behind it at real-time pacing, so streams overlap and clients leave mid-flight.
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

from conftest import MODEL, Recorder

CHATS = 200
WATCHDOG = 60.0  # seconds for the whole load: a hang fails here instead of blocking CI
PROMPTS = [  # (user turn, system prompt, max_tokens): long replies keep upstream streams open when clients leave
    ("Hello there", None, 40),
    ("Tell me about rivers", None, 60),
    ("Write 500 words about owls", None, 200),
    ("My name is Ada. What's my name?", None, 30),
    ("Explain streaming in one paragraph", "Answer briefly.", 50),
    ("Tell me about the sea", "You are a pirate.", 60),
    ("Résumé, naïve, 日本語, emoji 🦉: tell me about them", None, 50),
    ("Count to 10", None, 25),
    ("Write 500 words about bread", "Answer in JSON.", 150),
    ("What is a token?", None, 1),
]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def chat_body(i: int) -> dict[str, Any]:
    """The i-th client's request: the prompts cycle, so each reply is checked many times over."""
    content, system, max_tokens = PROMPTS[i % len(PROMPTS)]
    body: dict[str, Any] = {"messages": [{"role": "user", "content": content}], "max_tokens": max_tokens}
    if system:
        body["system"] = system
    return body


@dataclass
class Client:
    """How one client behaves: reads to the end, or leaves (before the first byte, after k events, or stalled)."""

    i: int
    leave: str  # "never" | "before_first_byte" | "after_events" | "stalled"
    after: int = 0
    delay: float = 0.0
    texts: list[str] = field(default_factory=list)
    terminal: tuple[str | None, Any] | None = None
    left: bool = False


def clients(seed: int) -> list[Client]:
    """A seeded mix: 60 % read to the end, the rest leave at random moments."""
    rng = random.Random(seed)
    mix = []
    for i in range(CHATS):
        roll = rng.random()
        if roll < 0.6:
            mix.append(Client(i, "never"))
        elif roll < 0.7:
            mix.append(Client(i, "before_first_byte", delay=rng.uniform(0.0, 0.05)))
        elif roll < 0.9:
            mix.append(Client(i, "after_events", after=rng.randint(1, 12)))
        else:
            mix.append(Client(i, "stalled", after=rng.randint(1, 5), delay=rng.uniform(0.05, 0.3)))
    return mix


async def run_client(http: httpx.AsyncClient, url: str, client: Client) -> None:
    """Play one client's part against the endpoint."""
    async with http.stream("POST", url, json=chat_body(client.i)) as response:
        assert response.status_code == 200, response.status_code
        async for event in aparse_sse(response.aiter_bytes(), strict_eof=True):
            if event.event == "text":
                client.texts.append(event.json()["text"])
                if client.leave in ("after_events", "stalled") and len(client.texts) >= client.after:
                    if client.leave == "stalled":
                        await asyncio.sleep(client.delay)  # stop reading for a while, then go
                    client.left = True
                    return  # leaving the `async with` closes the connection mid-stream
            else:
                client.terminal = (event.event, event.json())


async def play(url: str, mix: list[Client]) -> None:
    """Every client at once, under one watchdog."""
    limits = httpx.Limits(max_connections=CHATS + 10, max_keepalive_connections=CHATS + 10)
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as http:

        async def one(client: Client) -> None:
            if client.leave == "before_first_byte":
                try:
                    await asyncio.wait_for(run_client(http, url, client), timeout=client.delay)
                except TimeoutError:
                    client.left = True
            else:
                await run_client(http, url, client)

        await asyncio.wait_for(asyncio.gather(*(one(c) for c in mix)), timeout=WATCHDOG)


async def direct_replies(base_url: str) -> list[tuple[list[str], dict[str, Any]]]:
    """Each prompt's reply straight from the SDK: its text deltas, and the `done` data the app should send."""
    async with anthropic.AsyncAnthropic(base_url=base_url, api_key="test-key") as client:

        async def one(i: int) -> tuple[list[str], dict[str, Any]]:
            async with client.messages.stream(model=MODEL, **chat_body(i)) as stream:
                texts = [text async for text in stream.text_stream]
                message = await stream.get_final_message()
            usage = {"input_tokens": message.usage.input_tokens, "output_tokens": message.usage.output_tokens}
            return texts, {"stop_reason": message.stop_reason, "usage": usage}

        return list(await asyncio.gather(*(one(i) for i in range(len(PROMPTS)))))


@pytest.fixture
def stack() -> Iterator[tuple[Simulator, AppServer]]:
    """A simulator of its own (its counters are the test's evidence) and the app as deployed in front of it."""
    with Simulator(speed=1) as sim:
        settings = ChatSettings(model=MODEL, base_url=sim.base_url, api_key="test-key", read_timeout=10.0)
        with AppServer(create_app(settings)) as app:
            yield sim, app


@pytest.mark.parametrize("seed", [20261120])
def test_200_concurrent_chats_with_random_disconnects(
    stack: tuple[Simulator, AppServer], app_log: Recorder, seed: int
) -> None:
    sim, app = stack
    sim.speed = 0  # the reference replies need no pacing: pacing never changes a reply
    expected = asyncio.run(direct_replies(sim.base_url))
    sim.reset()
    sim.speed = 1
    mix = clients(seed)
    asyncio.run(play(app.url + "api/chat", mix))

    # Nothing left open upstream: every stream the app opened was completed or closed when its client left.
    assert sim.wait_idle(timeout=10), sim.stats()
    stats = sim.stats()
    assert stats["streams_open"] == 0
    assert stats["streams_failed"] == 0
    assert stats["streams_completed"] + stats["streams_abandoned"] == stats["requests"] <= CHATS
    assert stats["streams_abandoned"] > 0  # clients did leave while their upstream was still streaming
    leavers = [c for c in mix if c.left]
    assert len(leavers) >= CHATS // 4  # the mix really did leave mid-flight

    # Every client that stayed got its whole reply, identical to the direct one, and then `done`.
    stayed = [c for c in mix if c.leave == "never"]
    assert len(stayed) >= CHATS // 2
    for client in stayed:
        texts, done = expected[client.i % len(PROMPTS)]
        assert client.terminal == ("done", done), client
        assert client.texts == texts  # the same deltas, in the same order
        assert "".join(client.texts).encode() == "".join(texts).encode()
    # A client that left saw a prefix of the same reply: nothing garbled before it went.
    for client in leavers:
        texts, _ = expected[client.i % len(PROMPTS)]
        assert client.texts == texts[: len(client.texts)]

    # The server stayed healthy and quiet: no ASGI exception, no relay failure logged.
    assert httpx.get(app.url + "healthz", timeout=5).json() == {"ok": True}
    assert [r.getMessage() for r in app_log.records] == []
