"""Execute notebooks in place, offline, top to bottom in a fresh kernel, the way they are committed.

.venv/bin/python tools/execute.py notebooks/01_blocking_vs_streaming.ipynb [more.ipynb ...]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def merge_streams(outputs: list) -> list:
    """One block per stream: consecutive stdout (or stderr) writes joined, as a reader sees them."""
    merged: list = []
    for output in outputs:
        last = merged[-1] if merged else None
        if (
            output.get("output_type") == "stream"
            and last is not None
            and last.get("output_type") == "stream"
            and last.get("name") == output.get("name")
        ):
            last["text"] += output["text"]
        else:
            merged.append(output)
    return merged


def execute(path: Path, timeout: int = 300) -> float:
    """Run one notebook in its own folder with outputs replaced; returns the seconds it took."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    start = time.perf_counter()
    NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        allow_errors=False,
    ).execute()
    nb.metadata.pop("widgets", None)  # widget state is per run, and nbval never compares it
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = merge_streams(cell.outputs)
    nbformat.write(nb, path)
    return time.perf_counter() - start


def main(paths: list[str]) -> int:
    """Execute each path; stop at the first failure with its error."""
    os.environ["COURSE_OFFLINE"] = "1"
    os.environ.pop("ANTHROPIC_API_KEY", None)
    os.environ.pop("ANTHROPIC_BASE_URL", None)
    for name in paths:
        path = Path(name).resolve()
        seconds = execute(path)
        print(f"{path.relative_to(ROOT)}: executed in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
