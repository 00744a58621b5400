"""Reading a run directory written by ``caramba run`` (no MCP types; the REST API reuses it).

A run directory (``runs/<manifest>/<target>/<run id>/``, see docs/internals.md) holds
``run.json`` (state), ``events.jsonl`` (progress, eval, checkpoint, artifact … events),
``metrics.jsonl``, ``results.json`` and ``artifacts/``. The runner appends to the JSONL
files while it trains, so readers must tolerate a half-written last line: ``EventTail``
keeps a byte offset and only hands out complete lines.

Example::

    tail = EventTail(run_dir / "events.jsonl")
    for event in tail.read_new():        # call again later for what was appended since
        if event["event"] == "progress":
            print(event["step"], event["total"], event["loss"])
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

TERMINAL_RUN_STATES = frozenset({"completed", "failed", "cancelled"})


class EventTail:
    """Incremental reader of a JSONL file that another process is appending to."""

    def __init__(self, path: Path, offset: int = 0) -> None:
        self.path = path
        self.offset = offset

    def read_new(self, max_bytes: int = 4 * 1024 * 1024) -> list[dict[str, Any]]:
        """Complete lines appended since the last call, parsed; a partial last line waits."""
        if not self.path.exists():
            return []
        with self.path.open("rb") as f:
            f.seek(self.offset)
            chunk = f.read(max_bytes)
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        out: list[dict[str, Any]] = []
        for raw in chunk[: end + 1].splitlines():
            raw = raw.strip()
            if not raw:
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError:
                continue  # a corrupt line (e.g. a crash mid-write) is skipped, never fatal
            if isinstance(obj, dict):
                out.append(obj)
        return out


class RunProgress(BaseModel):
    """What the events of a run say so far: the current ``runs[].id`` and its progress."""

    model_config = ConfigDict(extra="forbid")

    run: str | None = Field(None, description="runs[].id currently (or last) training")
    step: int | None = Field(None, description="last reported optimizer step")
    total: int | None = Field(None, description="total steps of that run")
    loss: float | None = Field(None, description="last training loss")
    val_loss: float | None = Field(None, description="last validation loss")
    finished_runs: list[str] = Field(default_factory=list, description="runs[].id that finished")
    artifacts: list[str] = Field(default_factory=list, description="artifact paths reported so far")
    error: str | None = Field(None, description="the message of an 'error' event, if any")
    events: int = Field(0, description="number of events read")

    def apply(self, event: dict[str, Any]) -> None:
        """Fold one event into the summary."""
        self.events += 1
        kind = event.get("event")
        run = event.get("run")
        if kind == "run_started":
            self.run, self.step, self.loss, self.val_loss = run, 0, None, None
            self.total = _int(event.get("steps"))
        elif kind == "progress":
            self.run = run if run is not None else self.run
            self.step = _int(event.get("step"))
            self.total = _int(event.get("total")) or self.total
            self.loss = _float(event.get("loss"))
        elif kind == "eval":
            self.val_loss = _float(event.get("val_loss"))
        elif kind == "run_finished" and run is not None:
            self.finished_runs.append(str(run))
        elif kind == "artifact" and event.get("path"):
            self.artifacts.append(str(event["path"]))
        elif kind == "error":
            self.error = str(event.get("message"))


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _float(v: Any) -> float | None:
    if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v)):
        return float(v)
    return None


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object file, or None when it is absent or (being rewritten) unreadable."""
    try:
        obj = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def read_progress(run_dir: Path) -> RunProgress:
    """Summarise ``events.jsonl`` of a run from the start."""
    prog = RunProgress()
    for ev in EventTail(run_dir / "events.jsonl").read_new(max_bytes=64 * 1024 * 1024):
        prog.apply(ev)
    prog.artifacts = [_relative(a, run_dir) for a in prog.artifacts]
    return prog


def _relative(path: str, run_dir: Path) -> str:
    """An artifact path as the run tools name it: relative to the run directory."""
    p = Path(path)
    return str(p.relative_to(run_dir)) if p.is_absolute() and p.is_relative_to(run_dir) else path


def last_metrics(run_dir: Path, max_tail: int = 64 * 1024) -> dict[str, dict[str, Any]]:
    """The latest ``metrics.jsonl`` row per split (``train``/``val``)."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return {}
    size = path.stat().st_size
    with path.open("rb") as f:
        f.seek(max(0, size - max_tail))
        lines = f.read().splitlines()
    latest: dict[str, dict[str, Any]] = {}
    for raw in lines:
        try:
            row = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            latest[str(row.get("split", "train"))] = row
    return latest


def has_checkpoint(run_dir: Path) -> bool:
    """True when any ``checkpoints/<run>/step_<n>/`` exists (the run can resume)."""
    ck = run_dir / "checkpoints"
    return ck.is_dir() and any(p.name.startswith("step_") for p in ck.glob("*/step_*"))


def find_run_dir(runs_dir: Path, run_id: str) -> Path | None:
    """``runs/<manifest>/<target>/<run_id>/`` for a run id (unique across the workspace)."""
    if not runs_dir.is_dir():
        return None
    hits = [p for p in runs_dir.glob(f"*/*/{run_id}") if p.is_dir()]
    return hits[0] if len(hits) == 1 else None
