"""Ending the grader's processes: a worker with everything it started, or the kernel a dead worker left behind.

Both the grader's command (cli.py) and the kernel pool (pool.py) need them; they live here so neither imports the other
for them.
"""

from __future__ import annotations

from pathlib import Path


def kill_tree(pid: int) -> None:
    """Kill a worker and everything it started (its kernel runs in a session of its own)."""
    import psutil

    try:
        parent = psutil.Process(pid)
        procs = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=5)


def kill_orphan_kernel(pid_file: Path) -> None:
    """A worker killed by its own submission leaves its kernel behind: stop it (if that pid is still a kernel)."""
    import psutil

    try:
        proc = psutil.Process(int(pid_file.read_text(encoding="utf-8")))
        if "ipykernel" in " ".join(proc.cmdline()):
            proc.kill()
            proc.wait(5)
    except (OSError, ValueError, psutil.Error):
        pass
