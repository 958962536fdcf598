"""Every committed notebook is executed offline, top to bottom, clean: what nbval then re-checks is meaningful."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = sorted([*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("solutions/*.ipynb")])
KEY = re.compile(r"sk-ant-(api|admin)\d{2}-[A-Za-z0-9_-]{20,}")
ABSOLUTE = re.compile(r"(/work/|/home/|/root/|/tmp/|/Users/|[A-Z]:\\\\)")


def _code_cells(path: Path) -> list[dict]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [c for c in cells if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def _outputs_text(cell: dict) -> str:
    return json.dumps(cell.get("outputs", []))


@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: str(p.relative_to(ROOT)))
def test_executed_in_order_from_one(path: Path) -> None:
    counts = [c.get("execution_count") for c in _code_cells(path)]
    assert counts and counts == list(range(1, len(counts) + 1)), f"{path.name}: execution counts {counts}"


@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_stderr_errors_paths_or_secrets(path: Path) -> None:
    for cell in _code_cells(path):
        tags = cell.get("metadata", {}).get("tags", [])
        for out in cell.get("outputs", []):
            assert not (out.get("output_type") == "stream" and out.get("name") == "stderr"), (
                f"{path.name}: stderr output in cell {''.join(cell['source'])[:80]!r}: {''.join(out['text'])[:200]}"
            )
            if out.get("output_type") == "error":
                assert "raises-exception" in tags, f"{path.name}: unexpected error {out.get('ename')}"
        text = _outputs_text(cell)
        assert not KEY.search(text), f"{path.name}: an API key in an output"
        assert not ABSOLUTE.search(text), f"{path.name}: an absolute path in an output: {ABSOLUTE.search(text)[0]}"


@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: str(p.relative_to(ROOT)))
def test_starts_with_one_line_setup(path: Path) -> None:
    first = "".join(_code_cells(path)[0]["source"]).strip()
    assert first.count("\n") == 0 and "setup()" in first, f"{path.name}: first code cell is {first!r}"
