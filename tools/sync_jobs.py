"""Code-graph syncs as background jobs, next to runs in the same job manager.

A sync is ``python -m caramba codegraph sync PATH --graph NAME --events FILE`` started by
:meth:`caramba.tools.jobs.JobManager.start_sync` in its own session, like a run: it
survives the client disconnecting and the server exiting, and its record under
``.caramba/jobs/sync-<id>.json`` is listed by any later server. The subprocess appends
JSON lines to ``.caramba/jobs/<job id>.events.jsonl``:

* ``{ts, event: "progress", phase: "parse"|"write", done, total}`` — files parsed so
  far of the new/changed ones, then the write-and-swap step;
* ``{ts, event: "finished", report}`` — the :class:`~caramba.codegraph.sync.SyncReport`;
* ``{ts, event: "error", message}`` — a user-fixable problem (exit 2).

State is derived as for runs (process alive → ``running``), then from the events:
``finished`` → ``completed``; cancel requested → ``cancelled``; ``error`` or an error
exit → ``failed``; gone without either (SIGKILL, machine restart) → ``interrupted``.
A sync only replaces the live graph as its very last, atomic step (copy, change,
``RENAME``), so a cancelled or interrupted sync leaves the previous graph usable, and
running it again is safe and incremental (unchanged files are skipped).

This module is free of MCP types: the MCP tools and the REST API share it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio
from pydantic import BaseModel, ConfigDict, Field

from caramba.tools.job_store import ACTIVE_STATES, JobRecord, JobState

if TYPE_CHECKING:
    from caramba.tools.jobs import JobManager

SYNC_PREFIX = "sync-"
POLL_S = 0.2


class SyncProgress(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phase: Literal["parse", "write"] | None = Field(None, description="parse: parsing files; write: writing the graph")
    done: int = Field(0, description="new or changed files parsed so far")
    total: int | None = Field(None, description="new or changed files to parse (unchanged ones are skipped)")


class SyncJob(BaseModel):
    """What a client sees of a code-graph sync job."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    state: JobState
    path: str = Field(description="workspace-relative folder being indexed")
    graph: str
    created: float
    finished: float | None
    exit_code: int | None
    message: str | None = Field(description="why it failed or was interrupted")
    progress: SyncProgress
    report: dict[str, Any] | None = Field(
        description="when completed: graph, root, files, parsed, skipped, removed, relinked, errors, seconds")


class SyncEvents(BaseModel):
    progress: SyncProgress = SyncProgress()
    report: dict[str, Any] | None = None
    error: str | None = None


def events_path(jobs_dir: Path, job_id: str) -> Path:
    return jobs_dir / f"{job_id}.events.jsonl"


def sync_command(python: str, rec: JobRecord, events: Path) -> list[str]:
    """The subprocess of a sync job (run in the workspace root)."""
    return [python, "-m", "caramba", "codegraph", "sync", rec.sync_path or ".", "--graph", rec.graph or "",
            "--events", str(events)]


def read_events(path: Path) -> SyncEvents:
    """Everything the sync subprocess reported so far (a half-written last line is skipped)."""
    out = SyncEvents()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:
            continue
        kind = ev.get("event")
        if kind == "progress":
            out.progress = SyncProgress(phase=ev.get("phase"), done=int(ev.get("done", 0)), total=ev.get("total"))
        elif kind == "finished":
            out.report = ev.get("report")
            out.progress = SyncProgress(phase="write", done=out.progress.total or 0, total=out.progress.total)
        elif kind == "error":
            out.error = str(ev.get("message"))
    return out


def final_state(rec: JobRecord, events: SyncEvents, code: int | None, log_tail: Callable[[], str]) -> dict[str, object]:
    """The record updates for a sync whose process has ended (see the module docstring)."""
    out: dict[str, object] = {"finished": time.time(), "exit_code": code}
    if events.report is not None:
        out["state"] = "completed"
    elif rec.cancel_requested:
        out["state"] = "cancelled"
        out["message"] = "cancelled; the previous graph is unchanged (run codegraph_sync again to index)"
    elif events.error is not None or (code is not None and code > 0):
        out["state"] = "failed"
        out["message"] = events.error or log_tail()
    else:
        out["state"] = "interrupted"
        out["message"] = ("the sync's process ended without finishing (killed, or the machine restarted); "
                          "the previous graph is intact — run codegraph_sync again (incremental)")
    return out


def sync_status(jobs: JobManager, rec: JobRecord) -> SyncJob:
    """A sync job's record plus what its events file says."""
    ev = read_events(events_path(jobs.store.dir, rec.job_id))
    return SyncJob(job_id=rec.job_id, state=rec.state, path=rec.sync_path or ".", graph=rec.graph or "",
                   created=rec.created, finished=rec.finished, exit_code=rec.exit_code, message=rec.message,
                   progress=ev.progress, report=ev.report)


Notify = Callable[[float, float | None, str], Awaitable[None]]


async def follow_sync(jobs: JobManager, job_id: str, timeout_s: float, notify: Notify | None = None
                      ) -> tuple[SyncJob, bool]:
    """Wait for a sync to end (or ``timeout_s``), calling ``notify(done, total, message)``
    whenever its progress changes. Returns ``(status, timed_out)``."""
    deadline = time.monotonic() + timeout_s
    last: tuple[Any, ...] | None = None
    while True:
        rec = await anyio.to_thread.run_sync(jobs.get_sync, job_id)
        status = await anyio.to_thread.run_sync(sync_status, jobs, rec)
        p = status.progress
        key = (p.phase, p.done, p.total)
        if notify is not None and key != last and p.total:
            last = key
            what = "parsed" if p.phase == "parse" else "parsed; writing the graph"
            await notify(p.done, p.total, f"{status.graph}: {p.done}/{p.total} files {what}")
        if rec.state not in ACTIVE_STATES:
            return status, False
        if time.monotonic() >= deadline:
            return status, True
        await anyio.sleep(POLL_S)
