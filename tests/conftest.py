"""Fixtures: a fast simulator (pacing off), real SDK clients pointed at it over loopback HTTP, and the app's log."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest

from course_utils.simulator import Simulator

from recorded import fixtures_dir  # noqa: F401  (re-exported for test modules)

ROOT = Path(__file__).resolve().parents[1]
MODEL = "claude-haiku-4-5"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `install` (a fresh environment built from scratch) run only with COURSE_TEST_INSTALL=1."""
    if os.environ.get("COURSE_TEST_INSTALL") == "1":
        return
    skip = pytest.mark.skip(reason="builds an environment from scratch (minutes): run with COURSE_TEST_INSTALL=1")
    for item in items:
        if item.get_closest_marker("install"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def sim() -> Iterator[Simulator]:
    """One simulator for the session, pacing off; tests reset it before use."""
    with Simulator(speed=0) as simulator:
        yield simulator


@pytest.fixture
def fresh_sim(sim: Simulator) -> Simulator:
    """The session simulator with counters, faults and pacing reset."""
    # A stream the previous test's app is still relaying would otherwise land in this test's counters.
    assert sim.wait_idle(10), "a stream from an earlier test never ended"
    sim.reset()
    sim.speed = 0
    return sim


@pytest.fixture
def client(fresh_sim: Simulator) -> anthropic.Anthropic:
    """The real SDK client, talking to the simulator over HTTP."""
    return anthropic.Anthropic(base_url=fresh_sim.base_url, api_key="test-key")


@pytest.fixture
def async_client(fresh_sim: Simulator) -> anthropic.AsyncAnthropic:
    """The real async SDK client, talking to the simulator over HTTP."""
    return anthropic.AsyncAnthropic(base_url=fresh_sim.base_url, api_key="test-key")


class Recorder(logging.Handler):
    """Keeps the server-side records at WARNING and above, whatever the loggers' propagation."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def app_log() -> Iterator[Recorder]:
    """Records from uvicorn (an ASGI exception) and the chat app (a relay failure) during the test."""
    recorder = Recorder()
    loggers = [logging.getLogger(name) for name in ("uvicorn.error", "course_utils.chat_app")]
    for logger in loggers:
        logger.addHandler(recorder)
    yield recorder
    for logger in loggers:
        logger.removeHandler(recorder)
