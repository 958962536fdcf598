"""Offline or live: the one-line setup every notebook starts with.

    from course_utils import setup; course = setup()

With `ANTHROPIC_API_KEY` in `.env`, in the environment or (on Google Colab) in the notebook's Secrets, and
`COURSE_OFFLINE` not set, the SDK talks to the real API. Otherwise the
course's simulator starts on this machine and `ANTHROPIC_BASE_URL` points at it, so a plain `anthropic.Anthropic()`
in any later cell just works, with no key, no network and no cost.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from dotenv import find_dotenv, load_dotenv

if TYPE_CHECKING:
    import anthropic

    from .simulator import Simulator

DEFAULT_MODEL = "claude-haiku-4-5"
OFFLINE_KEY = "offline-simulator-no-key-needed"
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Course:
    """Which mode the course runs in, the model to use, and (offline) the simulator answering."""

    mode: Literal["offline", "live"]
    model: str
    simulator: Simulator | None = None

    @property
    def offline(self) -> bool:
        """True when the simulator answers instead of the real API."""
        return self.mode == "offline"

    def client(self, **options: Any) -> anthropic.Anthropic:
        """A synchronous SDK client for the current mode."""
        import anthropic

        return anthropic.Anthropic(**options)

    def async_client(self, **options: Any) -> anthropic.AsyncAnthropic:
        """An asynchronous SDK client for the current mode."""
        import anthropic

        return anthropic.AsyncAnthropic(**options)

    def local_simulator(self) -> Simulator:
        """The simulator on this machine, in either mode: failures, replays and counters the real API cannot give."""
        from .simulator import shared_simulator

        return self.simulator or shared_simulator()

    def __repr__(self) -> str:
        where = f", simulator={self.simulator.base_url!r}" if self.simulator else ""
        return f"Course(mode={self.mode!r}, model={self.model!r}{where})"


def _has_real_key() -> bool:
    return bool(os.environ.get("ANTHROPIC_API_KEY", "").strip())


def colab_secret(name: str = "ANTHROPIC_API_KEY") -> str | None:
    """The value of a Colab notebook secret, or None (not on Colab, no such secret, or access not granted)."""
    # Only a Colab kernel has google.colab imported already; anywhere else the module is not even looked for.
    if "google.colab" not in sys.modules:
        return None
    try:
        from google.colab import userdata  # type: ignore[import-not-found]

        value = userdata.get(name)
    except Exception:  # SecretNotFoundError, NotebookAccessError (the learner said no), or an older Colab
        return None
    return value.strip() if isinstance(value, str) and value.strip() else None


def setup(offline: bool | None = None, speed: float | None = None, quiet: bool = False) -> Course:
    """Load `.env`, choose live or offline mode, point the SDK at the right place, and say which (never the key)."""
    if os.environ.get("ANTHROPIC_API_KEY") == OFFLINE_KEY:
        # Our placeholder from an earlier offline setup() in this process: a key added to .env since then must win.
        del os.environ["ANTHROPIC_API_KEY"]
    load_dotenv(find_dotenv(usecwd=True), override=False)
    forced_offline = os.environ.get("COURSE_OFFLINE", "").strip().lower() in _TRUE
    if offline is not True and not forced_offline and not _has_real_key():
        secret = colab_secret()  # asked only when it could matter: Colab shows a consent prompt on first access
        if secret:
            os.environ["ANTHROPIC_API_KEY"] = secret  # so a plain anthropic.Anthropic() in later cells finds it
    if offline is None:
        offline = forced_offline or not _has_real_key()
    model = os.environ.get("COURSE_MODEL", "").strip() or DEFAULT_MODEL

    if not offline:
        from .simulator.running import shared_base_url

        ours = shared_base_url()
        if ours is not None and os.environ.get("ANTHROPIC_BASE_URL") == ours:
            del os.environ["ANTHROPIC_BASE_URL"]  # an earlier offline setup() in this process pointed it here
        course = Course(mode="live", model=model)
        if not quiet:
            print(f"Live mode: requests go to the real Claude API with your ANTHROPIC_API_KEY. Model: {model}.")
        return course

    from .simulator import shared_simulator

    simulator = shared_simulator(speed)
    os.environ["ANTHROPIC_BASE_URL"] = simulator.base_url
    os.environ["ANTHROPIC_API_KEY"] = OFFLINE_KEY  # the simulator needs some key; a real one never goes to it
    course = Course(mode="offline", model=model, simulator=simulator)
    if not quiet:
        print(
            f"Offline mode: the course's simulator answers on this machine (no key, no network, no cost). "
            f"Model: {model}."
        )
    return course
