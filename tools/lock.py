"""Regenerate the lock files from pyproject.toml's ranges, in a throwaway venv (Python 3.11, as CI uses).

    .venv/bin/python tools/lock.py            # keep today's versions where they still fit, add what is new
    .venv/bin/python tools/lock.py --upgrade  # the newest versions the ranges allow

requirements.txt gets what `pip install .[lab]` brings (learners, Binder); requirements-dev.txt gets what the
checkout adds on top (`.[grade,test,nbgrader]`, ruff, the benchmarks' event loop).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXTRA_DEV = ["ruff", "uvloop", "httptools"]  # maintainers' tools that no extra of the package names
LEARNERS_HEAD = (
    "# Exact versions learners get, Binder included (Python 3.11): the course package with JupyterLab and "
    "Notebook 7.\n# The loose ranges are in pyproject.toml; regenerate this file with tools/lock.py after "
    "changing them.\n-e .[lab]\n"
)
DEV_HEAD = (
    "# Exact versions of what the checkout adds for maintainers, instructors and CI (./course installs this "
    "file):\n# the grader, nbgrader, the test tools and the benchmarks' event loop, on top of the learners' "
    "pins.\n-r requirements.txt\n-e ./instructors\n"
)


def name_of(pin: str) -> str:
    """A pin's normalised project name (PEP 503)."""
    return re.sub(r"[-_.]+", "-", pin.split("==")[0]).lower()


def pins(path: Path) -> list[str]:
    """The `name==version` lines of a requirements file."""
    return [line.strip() for line in path.read_text().splitlines() if "==" in line and not line.startswith("#")]


def freeze(python: Path) -> list[str]:
    """What a venv holds, without the course itself."""
    out = subprocess.run(
        [str(python), "-m", "pip", "freeze", "--exclude-editable"], check=True, text=True, capture_output=True
    ).stdout
    return sorted(
        (line for line in out.splitlines() if "==" in line and name_of(line) != "streaming-with-claude"), key=str.lower
    )


def main(argv: list[str] | None = None) -> int:
    """Build both lock files."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upgrade", action="store_true", help="ignore today's pins")
    parser.add_argument("--python", default=shutil.which("python3.11") or sys.executable)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([args.python, "-m", "venv", str(venv)], check=True)
        python = venv / ("Scripts" if sys.platform == "win32" else "bin") / "python"
        install = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        if not args.upgrade:
            constraints = Path(tmp) / "constraints.txt"
            constraints.write_text("\n".join(pins(ROOT / "requirements.txt") + pins(ROOT / "requirements-dev.txt")))
            install += ["-c", str(constraints)]
        subprocess.run([*install, f"{ROOT}[lab]"], check=True)
        learners = freeze(python)
        subprocess.run([*install, f"{ROOT}[lab,grade,test,nbgrader]", *EXTRA_DEV], check=True)
        theirs = {name_of(p) for p in learners}
        dev = [p for p in freeze(python) if name_of(p) not in theirs]
    (ROOT / "requirements.txt").write_text(LEARNERS_HEAD + "\n".join(learners) + "\n")
    (ROOT / "requirements-dev.txt").write_text(DEV_HEAD + "\n".join(dev) + "\n")
    print(f"requirements.txt: {len(learners)} pins; requirements-dev.txt: {len(dev)} more.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
