"""Child processes of a process, read from ``/proc`` (Linux): for the tests that check
that data-loading workers never outlive their training process."""

from __future__ import annotations

import time
from pathlib import Path


def _stat(pid: int) -> tuple[str, int] | None:
    """``(state, ppid)`` of a process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses
    return fields[0], int(fields[1])


def child_pids(pid: int) -> set[int]:
    """Living (non-zombie) direct children of ``pid``."""
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None and st[1] == pid and st[0] != "Z":
                out.add(int(entry.name))
    return out


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie waiting to be reaped."""
    st = _stat(pid)
    return st is not None and st[0] != "Z"


def wait_gone(pids: set[int], timeout: float) -> set[int]:
    """Wait until none of ``pids`` is alive; returns those still alive at the deadline."""
    deadline = time.time() + timeout
    while True:
        left = {p for p in pids if alive(p)}
        if not left or time.time() > deadline:
            return left
        time.sleep(0.1)
