"""The process run directory and its transcript.

A process (brainstorm, manifest_author, paper_write, …) gets a run directory like an
experiment: ``<workspace>/runs/<manifest name>/<target>/<run id>/`` with

* ``run.json`` — ``{manifest, target, run_id, created, argv, pid, state, process, totals}``
  (``state``: ``running|completed|failed|cancelled``; ``totals``: what the process spent,
  written when it ends), rewritten atomically;
* ``events.jsonl`` — the transcript, one JSON object per line, always with ``ts``,
  ``event`` and ``persona`` (null for process-level events):

  - ``process_started {process, team, models}``, ``process_finished {state, totals}``
    (``totals {llm_calls, tool_calls, prompt_tokens, completion_tokens, tokens, cost_usd,
    unpriced_calls, wall_s}``; ``cost_usd`` null when no call was priced)
  - ``message {persona, role: user|assistant, text}`` — what a persona was asked / said
  - ``llm_turn {persona, model, duration_s, prompt_tokens, completion_tokens, cost_usd,
    text, tool_calls}`` — every model call (tokens as the provider reported them;
    ``cost_usd`` from LiteLLM's price table, null for an unpriced model)
  - ``tool_call {persona, tool, args, ok, result, duration_s}`` — every MCP tool call
    (``result`` is a summary: at most 2,000 characters)
  - process-specific events (``manifest_attempt``, ``validation``, ``leaderboard``,
    ``proposals``, ``wipe``, ``save``, ``budget_exceeded {limit, budget, totals}``, …).

Nothing is created until the process has passed its pre-flight checks (models usable),
so a failed start leaves no half-written directory.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from caramba.engine.train.rundir import choose_run_dir, target_dir

SUMMARY_CHARS = 2000


def summarize(value: Any, limit: int = SUMMARY_CHARS) -> Any:
    """A JSON-safe value no longer than ``limit`` characters once dumped."""
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = json.dumps(str(value))
    if len(text) <= limit:
        return json.loads(text)
    return text[:limit] + f"… [{len(text) - limit} more characters]"


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temp file + rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    """Write text atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class ProcessRun:
    """A process's run directory and transcript writer (thread-safe appends)."""

    def __init__(self, runs_root: Path, manifest: str, target: str, process: str, *,
                 run_id: str | None = None, argv: list[str] | None = None) -> None:
        folder = target_dir(runs_root, manifest, target)
        self.dir, self.run_id, _ = choose_run_dir(folder, run_id=run_id, resume=False)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.info: dict[str, Any] = {"manifest": manifest, "target": target, "run_id": self.run_id,
                                     "created": time.time(), "argv": argv or [], "pid": os.getpid(),
                                     "state": "running", "process": process}
        write_json(self.dir / "run.json", self.info)
        self._lock = threading.Lock()
        self._events = (self.dir / "events.jsonl").open("a", buffering=1)

    def emit(self, event: str, persona: str | None = None, **fields: Any) -> None:
        row = {"ts": time.time(), "event": event, "persona": persona, **fields}
        line = json.dumps(row, default=str)
        with self._lock:
            self._events.write(line + "\n")

    def finish(self, state: str, **fields: Any) -> None:
        self.emit("process_finished", state=state, **fields)
        self.info["state"] = state
        if "totals" in fields:
            self.info["totals"] = fields["totals"]
        write_json(self.dir / "run.json", self.info)
        with self._lock:
            self._events.close()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in (self.dir / "events.jsonl").read_text().splitlines() if line.strip()]
