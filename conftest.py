"""Test-wide settings: always offline, and the shared fixtures every test module uses."""

from __future__ import annotations

import os

# Tests never reach the real API, whatever a developer's .env says; kernels started by nbval inherit this.
os.environ["COURSE_OFFLINE"] = "1"
os.environ.pop("ANTHROPIC_API_KEY", None)
os.environ.pop("ANTHROPIC_BASE_URL", None)
os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
# Pinned environments drift through new warnings; a notebook's stored output must not depend on them.
os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning:jupyter_client,ignore::DeprecationWarning:zmq")
