"""As a learner on Colab, a JupyterHub or their own laptop gets the course: `pip install` of the wheel into a fresh
venv, then every lesson run from a folder that is not the checkout (nbclient, a kernel of that venv).

Python 3.11 (CI's) runs every lesson; 3.12 and 3.13, where this machine has them, install the same pins and run lessons
00, 02 and 03 (all of them with COURSE_WHEEL_ALL_LESSONS=1). pip's own cache keeps reinstalls quick.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PARALLEL = 3  # lessons at once: they mostly wait on the simulator's real-time pacing


def find_python(version: str) -> str | None:
    """An interpreter of that version that really starts (a pyenv shim of a version not selected does not)."""
    candidates = [shutil.which(f"python{version}")]
    candidates += sorted(str(p) for p in Path.home().glob(f".pyenv/versions/{version}.*/bin/python{version}"))
    for candidate in filter(None, candidates):
        done = subprocess.run(
            [candidate, "-c", "import sys, venv; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode == 0 and done.stdout.strip() == str(tuple(map(int, version.split(".")))):
            return candidate
    return None


PYTHONS = {v: p for v in ("3.11", "3.12", "3.13") if (p := find_python(v))}
# CI's Python runs every lesson; the others run three (start, the wire, async), where an interpreter's differences
# would show, unless COURSE_WHEEL_ALL_LESSONS=1 (all three versions passed every lesson when this was written).
OTHER_PYTHONS_RUN = ("00_", "02_", "03_")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

# Runs in the test's own venv (which has nbclient): each lesson with a kernel of the learner's venv, cwd = the
# lesson's folder; a last cell reports where course_utils was imported from.
RUNNER = r"""
import json, os, sys, tempfile, time
from pathlib import Path
import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
results = {}
for name in sys.argv[1:]:  # one lesson per process in practice (the test runs several at once)
    path = Path(name)
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import course_utils, json\nprint('WHERE ' + json.dumps(course_utils.__file__))"))
    start = time.monotonic()
    # Unix sockets, not TCP: lessons start side by side, and TCP ports picked free by one process can be taken by
    # another before its kernel binds them (the kernel then dies before it answers). A short private path each.
    try:
        with tempfile.TemporaryDirectory(prefix="k") as sockets:
            km = KernelManager(kernel_name="course-wheel", transport="ipc", ip=os.path.join(sockets, "kernel"))
            NotebookClient(nb, km=km, timeout=300, resources={"metadata": {"path": str(path.parent)}}).execute()
        error = None
    except Exception as exc:
        error = f"{type(exc).__name__}: {str(exc)[-1500:]}"
    where = next((o["text"].split("WHERE ", 1)[1].strip() for o in nb.cells[-1].get("outputs", [])
                  if o.get("name") == "stdout" and "WHERE " in o.get("text", "")), None)
    results[path.name] = {"error": error, "where": where and json.loads(where),
                          "seconds": round(time.monotonic() - start, 1)}
print("RESULTS " + json.dumps(results))
"""


def pins() -> list[str]:
    """The learners' exact versions, as pip constraints (the `-e` line is not a constraint)."""
    return [
        line
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "-"))
    ]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The course's wheel, as `pip wheel .` builds it from a clean clone (a checkout's own build/ folder, left by an
    earlier build, would otherwise be packed in as it stands)."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "course_utils", source / "course_utils", ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (built,) = out.glob("streaming_with_claude-*.whl")
    return built


def test_the_wheel_holds_the_package_and_its_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "course_utils/__init__.py",
        "course_utils/console.py",
        "course_utils/simulator/corpus.json",
        "course_utils/simulator/models.json",
        "course_utils/chat_app/static/index.html",
    ):
        assert needed in names, needed
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "Requires-Dist: matplotlib" in text and "Requires-Dist: tenacity" in text
    assert "License-Expression: MIT" in text
    entry_points = zipfile.ZipFile(wheel).read(metadata.replace("METADATA", "entry_points.txt")).decode()
    assert "course = course_utils.console:main" in entry_points
    assert not [n for n in names if n.startswith(("tests/", "notebooks/", "solutions/"))]
    # The learners' wheel: no grader, no hidden checks (only a checkout, or the instructors' zip, has them).
    hidden = ("course_instructors/", "course_utils/grade/", "course_utils/checks/hidden/")
    assert not [n for n in names if n.startswith(hidden)]
    assert "course_utils/checks/ex01.py" in names and "course_utils/selfcheck.py" in names


# 3.11 is CI's Python; the others take minutes of downloads on a fresh machine, so they run on request
# (COURSE_TEST_INSTALL=1, see tests/conftest.py).
@pytest.mark.parametrize(
    "version", [v if v == "3.11" else pytest.param(v, marks=pytest.mark.install) for v in sorted(PYTHONS)]
)
def test_every_lesson_runs_after_a_plain_pip_install(version: str, wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([PYTHONS[version], "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("\n".join(pins()) + "\n")
    start = time.monotonic()
    # Plain `pip install streaming_with_claude-*.whl`, held to the learners' pins so the run is reproducible.
    done = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-c",
            str(constraints),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    installed = round(time.monotonic() - start, 1)
    check = subprocess.run([str(python), "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout

    # The learner's folder: the lessons alone, nowhere near the checkout.
    work = tmp_path / "somewhere" / "else"
    work.mkdir(parents=True)
    every = version == "3.11" or os.environ.get("COURSE_WHEEL_ALL_LESSONS") == "1"
    lessons = [p for p in LESSONS if every or p.name.startswith(OTHER_PYTHONS_RUN)]
    for lesson in lessons:
        shutil.copy(lesson, work / lesson.name)
    kernels = tmp_path / "jupyter" / "kernels" / "course-wheel"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": f"course wheel (Python {version})",
                "language": "python",
            }
        )
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "PYTHONPATH", "VIRTUAL_ENV", "JUPYTER_PATH"))
    }
    env |= {
        "JUPYTER_PATH": str(tmp_path / "jupyter"),
        "COURSE_OFFLINE": "1",
        "COURSE_SIM_SPEED": "0",
        "HOME": str(tmp_path / "home"),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    (tmp_path / "home").mkdir()
    pending = [work / p.name for p in lessons]
    running: list[tuple[Path, subprocess.Popen[str]]] = []
    results = {}
    while pending or running:
        while pending and len(running) < PARALLEL:
            lesson = pending.pop(0)
            running.append(
                (
                    lesson,
                    subprocess.Popen(
                        [sys.executable, "-c", RUNNER, str(lesson)],
                        cwd=work,
                        env=env,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                    ),
                )
            )
        lesson, process = running.pop(0)
        stdout, stderr = process.communicate(timeout=1500)
        assert process.returncode == 0, (lesson.name, stderr[-3000:])
        results |= json.loads(stdout.split("RESULTS ", 1)[1])
    print(
        f"Python {version}: install {installed} s; lessons "
        + ", ".join(f"{name[:2]} {r['seconds']} s" for name, r in results.items())
    )
    failed = {name: r["error"] for name, r in results.items() if r["error"]}
    assert not failed, failed
    for name, r in results.items():
        assert r["where"] and Path(r["where"]).is_relative_to(venv), (name, r["where"])  # the wheel, not the checkout
    # The learners' `course` command: their subcommands only.
    course = venv / "bin" / "course"
    done = subprocess.run([str(course), "help"], capture_output=True, text=True, timeout=120, check=False, cwd=work)
    assert done.returncode == 0 and "sim" in done.stdout and "release" not in done.stdout, done.stdout
    done = subprocess.run(
        [str(course), "grade", "x.ipynb"], capture_output=True, text=True, timeout=120, check=False, cwd=work
    )
    assert done.returncode == 2 and "unknown command 'grade'" in done.stderr
