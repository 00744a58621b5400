"""The run directory: ``<workspace>/runs/<manifest>/<target>/<run id>/``.

Layout and ``run.json`` are a contract other components read (docs/internals.md,
"Training and runs")::

    manifest.yml   the resolved manifest          run.json   {manifest, target, run_id,
    events.jsonl   one event per line                         created, argv, pid, state}
    metrics.jsonl  one metrics row per line       checkpoints/<runs[].id>/step_<n>/ + latest
    tensorboard/   TensorBoard event files        artifacts/  summary.csv, summary.tex, *.png
    results.json   final metrics per run

A fresh run id is ``YYYYmmdd-HHMMSS-<4 hex>``, so ids sort by creation time and
``--resume`` without ``--run-id`` picks the newest.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

from caramba.engine.errors import CarambaError

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
STATES = ("running", "completed", "failed", "cancelled")


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def target_dir(runs_root: Path, manifest_name: str, target: str) -> Path:
    return runs_root / manifest_name / target


def newest_run(folder: Path) -> str | None:
    """The newest run id under a target folder (by ``run.json`` creation time, then name)."""
    if not folder.is_dir():
        return None
    runs = []
    for d in folder.iterdir():
        info = d / "run.json"
        if d.is_dir() and info.exists():
            try:
                created = float(json.loads(info.read_text()).get("created", 0))
            except (json.JSONDecodeError, TypeError, ValueError):
                created = 0.0
            runs.append((created, d.name))
    return max(runs)[1] if runs else None


def choose_run_dir(folder: Path, *, run_id: str | None, resume: bool) -> tuple[Path, str, bool]:
    """``(run dir, run id, resuming)`` for the CLI's ``--run-id``/``--resume`` combination."""
    if run_id is not None and not RUN_ID.match(run_id):
        raise CarambaError(f"invalid run id '{run_id}'",
                           fix="use letters, digits, '.', '_' and '-' only (at most 128 characters)")
    if resume:
        chosen = run_id or newest_run(folder)
        if chosen is None:
            raise CarambaError(f"nothing to resume: no runs under {folder}",
                               fix="start the run without --resume first")
        path = folder / chosen
        if not (path / "run.json").exists():
            raise CarambaError(f"nothing to resume: {path} is not a run directory",
                               fix=f"pick an existing run id (see {folder}) or drop --resume")
        return path, chosen, True
    chosen = run_id or new_run_id()
    path = folder / chosen
    if (path / "run.json").exists():
        raise CarambaError(f"run '{chosen}' already exists at {path}",
                           fix="add --resume to continue it, or choose another --run-id")
    return path, chosen, False


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temp file + rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class RunInfo:
    """``run.json``: who started the run and where it stands."""

    def __init__(self, run_dir: Path, data: dict[str, Any]) -> None:
        self.path, self.data = run_dir / "run.json", data

    @classmethod
    def start(cls, run_dir: Path, *, manifest: str, target: str, run_id: str, argv: list[str] | None) -> RunInfo:
        info = cls(run_dir, {"manifest": manifest, "target": target, "run_id": run_id, "created": time.time(),
                             "argv": argv or [], "pid": os.getpid(), "state": "running"})
        info.save()
        return info

    @classmethod
    def resume(cls, run_dir: Path, argv: list[str] | None) -> RunInfo:
        data = json.loads((run_dir / "run.json").read_text())
        data.update({"pid": os.getpid(), "state": "running", "resumed": time.time(),
                     "resume_argv": argv or []})
        info = cls(run_dir, data)
        info.save()
        return info

    def set_state(self, state: str) -> None:
        assert state in STATES
        self.data["state"] = state
        self.data["finished" if state != "running" else "updated"] = time.time()
        self.save()

    def save(self) -> None:
        write_json(self.path, self.data)
