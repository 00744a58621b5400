"""The run recorder: ``events.jsonl``, ``metrics.jsonl`` and the live sinks.

Every event is one JSON line ``{"ts", "event", "run", ...}`` appended to
``events.jsonl`` and flushed at once, so other processes (the MCP server, the REST API)
can follow a run by tailing the file; metrics rows go to ``metrics.jsonl``. The same
rows are handed to the sinks — console, TensorBoard, Weights & Biases — and to the
caller's ``on_event`` callback. The event names and fields are a contract (see
docs/internals.md, "Training and runs").

:func:`truncate_metrics` is used on ``--resume``: rows logged after the checkpoint being
resumed are dropped, so the file holds one continuous curve.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

EVENTS = "events.jsonl"
METRICS = "metrics.jsonl"


class Sink(Protocol):
    def on_event(self, row: dict[str, Any]) -> None: ...
    def on_metric(self, row: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


def _clean(value: Any) -> Any:
    """JSON-safe: non-finite floats become null (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class RunRecorder:
    """Appends events and metrics of one run directory and fans them out."""

    def __init__(self, run_dir: Path, *, sinks: list[Sink] | None = None,
                 on_event: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.run_dir = run_dir
        self.sinks = list(sinks or [])
        self.on_event = on_event
        self._events = open(run_dir / EVENTS, "a", encoding="utf-8")
        self._metrics = open(run_dir / METRICS, "a", encoding="utf-8")

    def event(self, name: str, run: str | None, **fields: Any) -> None:
        row = {"ts": time.time(), "event": name, "run": run, **{k: _clean(v) for k, v in fields.items()}}
        self._events.write(json.dumps(row) + "\n")
        self._events.flush()
        for sink in self.sinks:
            sink.on_event(row)
        if self.on_event is not None:
            self.on_event(row)

    def metric(self, row: dict[str, Any]) -> None:
        row = {k: _clean(v) for k, v in row.items()}
        self._metrics.write(json.dumps(row) + "\n")
        self._metrics.flush()
        for sink in self.sinks:
            sink.on_metric(row)

    def truncate_metrics(self, keep: Callable[[dict[str, Any]], bool]) -> int:
        """Drop the metrics rows ``keep`` rejects (see :func:`truncate_metrics`) and go on
        appending to the rewritten file."""
        self._metrics.close()
        dropped = truncate_metrics(self.run_dir, keep)
        self._metrics = open(self.run_dir / METRICS, "a", encoding="utf-8")
        return dropped

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
        self._events.close()
        self._metrics.close()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All complete JSON lines of ``path`` (a torn last line from a killed writer is skipped)."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def truncate_metrics(run_dir: Path, keep: Callable[[dict[str, Any]], bool]) -> int:
    """Rewrite ``metrics.jsonl`` atomically with only the rows ``keep`` accepts; returns
    how many rows were dropped."""
    path = run_dir / METRICS
    rows = read_jsonl(path)
    kept = [r for r in rows if keep(r)]
    tmp = path.with_name(f".{METRICS}.{os.getpid()}.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    os.replace(tmp, path)
    return len(rows) - len(kept)
