"""The package declares what it imports, the lock files pin all of it within the declared ranges, and the `course`
command works the same whether `./course` or `pip install` put it there."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from course_utils import console

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
# Instructors' code: what it imports belongs in the [grade] extra, not in what every learner installs.
INSTRUCTORS = ROOT / "instructors" / "course_instructors"
# Imported only where they exist: Colab's own module (inside Colab), and Redis for a deployment (the [deploy] extra).
OPTIONAL = {"google": None, "redis": "deploy"}


def canonical(name: str) -> str:
    """A project name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(extra: str | None = None) -> dict[str, Requirement]:
    """The requirements of the package, or of one extra."""
    lines = PROJECT["dependencies"] if extra is None else PROJECT["optional-dependencies"][extra]
    return {canonical(r.name): r for r in map(Requirement, lines)}


def pins(name: str) -> dict[str, Version]:
    """The exact versions a requirements file pins."""
    found = {}
    for line in (ROOT / name).read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            project, version = line.split("==")
            found[canonical(project)] = Version(version.strip())
    return found


def third_party_imports(sources: dict[str, str]) -> dict[str, set[str]]:
    """Top-level modules imported by each source (relative imports and the standard library left out)."""
    found: dict[str, set[str]] = {}
    for where, text in sources.items():
        for node in ast.walk(ast.parse(text)):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and node.module and not node.level
                else []
            )
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in {"course_utils", "course_instructors"}:
                    found.setdefault(top, set()).add(where)
    return found


def notebook_code(path: Path) -> str:
    """A notebook's code cells as one Python source (IPython magics and shell lines dropped)."""
    cells = json.loads(path.read_text())["cells"]
    lines = [line for c in cells if c["cell_type"] == "code" for line in "".join(c["source"]).splitlines()]
    return "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))


def distributions_of(module: str) -> set[str]:
    """The installed projects that provide a top-level module."""
    return {canonical(d) for d in packages_distributions().get(module, [])}


def test_every_import_of_the_lessons_and_learners_helpers_is_a_declared_dependency() -> None:
    sources = {str(p.relative_to(ROOT)): p.read_text() for p in (ROOT / "course_utils").rglob("*.py")}
    sources |= {str(p.relative_to(ROOT)): notebook_code(p) for p in sorted((ROOT / "notebooks").glob("*.ipynb"))}
    sources |= {str(p.relative_to(ROOT)): notebook_code(p) for p in sorted((ROOT / "solutions").glob("*.ipynb"))}
    imports = third_party_imports(sources)
    assert {"anthropic", "matplotlib", "numpy", "httpx", "ipywidgets", "tenacity"} <= set(imports)
    runtime = set(declared())
    missing = {
        module: sorted(where)[:3]
        for module, where in imports.items()
        if not distributions_of(module) & runtime and module not in OPTIONAL
    }
    for module, extra in OPTIONAL.items():
        assert extra is None or module in declared(extra), (module, extra)
    assert not missing, f"imported but not in [project] dependencies: {missing}"


def test_the_instructors_imports_are_in_the_grade_extra() -> None:
    sources = {str(p): p.read_text() for p in INSTRUCTORS.rglob("*.py")}
    allowed = set(declared()) | set(declared("grade"))
    missing = {m for m in third_party_imports(sources) if not distributions_of(m) & allowed}
    assert not missing, missing
    assert {"nbclient", "nbformat"} <= set(declared("grade"))


def test_extras_for_the_lab_instructors_and_tests() -> None:
    assert {"jupyterlab", "notebook"} <= set(declared("lab"))
    assert declared("lab")["notebook"].specifier.contains("7.2")  # Notebook 7
    assert {"pytest", "nbval"} <= set(declared("test"))
    assert "nbgrader" in declared("nbgrader")


@pytest.mark.parametrize(
    "lock, ranges", [("requirements.txt", [None, "lab"]), ("requirements-dev.txt", ["grade", "test", "nbgrader"])]
)
def test_the_lock_files_pin_every_declared_requirement_inside_its_range(lock: str, ranges: list[str | None]) -> None:
    pinned = pins("requirements.txt") | (pins("requirements-dev.txt") if lock != "requirements.txt" else {})
    for extra in ranges:
        for name, requirement in declared(extra).items():
            assert name in pinned, f"{lock} does not pin {name}"
            assert requirement.specifier.contains(pinned[name], prereleases=True), (
                f"{lock}: {name}=={pinned[name]} is outside {requirement}"
            )


def test_learners_pins_hold_no_test_tool_and_dev_pins_do_not_repeat_them() -> None:
    learners, dev = pins("requirements.txt"), pins("requirements-dev.txt")
    assert not {"pytest", "nbval", "hypothesis", "playwright", "nbgrader", "ruff"} & set(learners)
    assert not set(learners) & set(dev)
    text = (ROOT / "requirements.txt").read_text().splitlines()
    assert "-e .[lab]" in text
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text().splitlines()


def test_python_versions_and_license() -> None:
    assert PROJECT["requires-python"] == ">=3.11"
    assert {f"Programming Language :: Python :: 3.{n}" for n in (11, 12, 13)} <= set(PROJECT["classifiers"])
    assert PROJECT["license"] == "MIT"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text
    assert PROJECT["scripts"]["course"] == "course_utils.console:main"


def test_course_help_and_an_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert console.main(["help"]) == 0
    out = capsys.readouterr().out
    assert "lab" in out and "sim" in out and "app" in out
    assert console.main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_maintainers_commands_refuse_outside_a_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert console.checkout_root() is None
    assert console.main(["test"]) == 2
    assert "checkout" in capsys.readouterr().err
    assert console.checkout_root(ROOT / "tests") == ROOT


def test_lab_opens_lesson_00_when_it_is_there(tmp_path: Path) -> None:
    assert console.lab_command([], tmp_path)[:4] == [sys.executable, "-m", "jupyter", "lab"]
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "00_start_here.ipynb").write_text("{}")
    command = console.lab_command(["--port", "9999"], tmp_path)
    assert str(Path("notebooks") / "00_start_here.ipynb") in command and command[-2:] == ["--port", "9999"]
    assert str(Path("notebooks") / "00_start_here.ipynb") not in console.lab_command(["other.ipynb"], tmp_path)


def test_the_shell_script_hands_over_to_the_console_module() -> None:
    done = subprocess.run([str(ROOT / "course"), "help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("usage: course COMMAND")
    installed = Path(sys.executable).parent / "course"
    if installed.exists():  # the console script pip made from [project.scripts]
        done = subprocess.run([str(installed), "sim", "--port", "-1"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and "port" in done.stderr


def test_course_sim_serves_and_stops(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "course_utils.console", "sim", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "http://127.0.0.1:" in first, first
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0


def test_no_lesson_code_reads_files_of_the_checkout() -> None:
    # A lesson runs wherever it was opened (Colab, a JupyterHub home, a bundle): code may not reach for ../files.
    # (Markdown links between lessons and exercises may: they only break as links.)
    offending = {}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "exercises").glob("*.ipynb")):
        for index, cell in enumerate(json.loads(path.read_text())["cells"]):
            source = "".join(cell["source"])
            if cell["cell_type"] == "code" and re.search(r"""["']\.\./|\.\./\w|\.parent\s*/""", source):
                offending.setdefault(path.name, []).append(index)
    assert not offending, offending


def test_the_learners_command_has_no_instructor_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    console.main(["help"])
    out = capsys.readouterr().out
    assert "release" not in out and "grade" not in out and "sim" in out
    assert console.main(["release", "--check"]) == 2
    assert "unknown command 'release'" in capsys.readouterr().err


def test_the_checkouts_command_adds_release_and_grade(capsys: pytest.CaptureFixture[str]) -> None:
    from course_instructors import console as instructors_console

    instructors_console.main(["help"])
    out = capsys.readouterr().out
    assert "release [--check" in out and "grade SUBMISSION" in out and "sim" in out
    assert instructors_console.main(["release", "--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_learners_code_never_imports_the_instructors_package() -> None:
    # The one-way rule: lessons -> course_utils -> SDK; course_instructors may import course_utils, never the reverse.
    sources = {str(p.relative_to(ROOT)): p.read_text() for p in (ROOT / "course_utils").rglob("*.py")}
    sources |= {
        str(p.relative_to(ROOT)): notebook_code(p)
        for folder in ("notebooks", "exercises")
        for p in sorted((ROOT / folder).glob("*.ipynb"))
    }
    offenders = []
    for where, text in sources.items():
        for node in ast.walk(ast.parse(text)):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [(where, n) for n in names if n.split(".")[0] == "course_instructors"]
    assert not offenders


def test_the_wheel_leaves_the_grader_and_the_hidden_checks_out() -> None:
    find = PYPROJECT["tool"]["setuptools"]["packages"]["find"]
    assert find["include"] == ["course_utils*"]
    assert "exclude" not in find  # nothing to leave out: the instructors' tools are not in course_utils
    assert not (ROOT / "course_utils" / "grade").exists() and not (ROOT / "course_utils" / "release.py").exists()


def test_the_test_command_runs_one_worker_per_core_plus_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from course_utils import console

    monkeypatch.delenv("COURSE_TEST_WORKERS", raising=False)
    monkeypatch.setattr(console.os, "cpu_count", lambda: 2)
    assert console.test_command()[3:] == ["-n", "3", "--dist", "loadfile"]
    monkeypatch.setattr(console.os, "cpu_count", lambda: 64)
    assert console.test_command()[3:5] == ["-n", "8"]
    monkeypatch.setenv("COURSE_TEST_WORKERS", "0")
    assert console.test_command()[1:] == ["-m", "pytest"]
