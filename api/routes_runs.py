"""Run routes: start, list, status, metrics, the live event stream, cancel, resume.

A run is a background job of the shared :class:`~caramba.tools.jobs.JobManager` (a
``python -m caramba run … --run-id ID`` subprocess in its own session): the job id is the
run id, jobs survive the server and are the same ones the MCP server sees.

* ``POST /api/runs`` ``{path | text, target, overrides, device}`` → 201 + status (the
  manifest is validated first: a bad one is a 422 with every issue located);
* ``GET /api/runs?state=&manifest=&target=&limit=&offset=`` newest first (runs started with
  ``caramba run`` in a terminal are included: :mod:`caramba.api.adopt`);
* ``GET /api/runs/{id}`` state, progress (step/total/loss), latest metrics;
* ``GET /api/runs/{id}/metrics?split=train&run=a&offset=0&limit=500`` rows of
  ``metrics.jsonl``, paginated (``next_offset`` is null on the last page);
* ``GET /api/runs/{id}/events`` **server-sent events**, one per ``events.jsonl`` line as it
  is written (``event:`` = its ``event`` field: ``progress {step, total, loss, lr,
  tokens_per_s}``, ``eval``, ``checkpoint``, ``verify``, ``benchmark``, ``artifact``,
  ``run_finished {metrics}``, ``target_finished`` …) plus ``state`` when the job's state
  changes; the stream ends when the job has ended and every event was sent. The SSE
  ``id`` is a byte offset: reconnecting with ``Last-Event-ID`` (or ``?offset=``) resumes
  without losing events. Paths inside events are made workspace-relative.
* ``POST /api/runs/{id}/cancel?wait_s=30`` SIGTERM → checkpoint → ``cancelled``;
* ``POST /api/runs/{id}/resume`` continues a cancelled/interrupted run from its checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse

from caramba.api.adopt import adopt_cli_runs
from caramba.api.app import get_deps
from caramba.api.errors import NotFound
from caramba.tools.common import ToolDeps, run_blocking
from caramba.tools.group_runs import JobStatus, _start, job_status
from caramba.tools.job_store import ACTIVE_STATES, JobRecord, JobState, check_job_id
from caramba.tools.run_files import EventTail

router = APIRouter(tags=["runs"])
POLL_S = 0.25


class StartRun(BaseModel):
    """What to run: a manifest (path or text), its target and ``--set`` overrides."""

    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(None, description="manifest file in the workspace, or 'preset:<name>'")
    text: str | None = Field(None, description="manifest YAML text (instead of path)")
    target: str | None = Field(None, description="target or entrypoint; default: the manifest's default")
    overrides: list[str] = Field(default_factory=list, description="'dotted.path=value' overrides (like --set)")
    device: str | None = Field(None, description="'cpu', 'cuda', 'cuda:1'; default: the run picks")


class RunList(BaseModel):
    model_config = ConfigDict(extra="forbid")
    total: int = Field(description="jobs matching the filters")
    runs: list[JobStatus]


class MetricsPage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    total: int = Field(description="rows matching the filters")
    offset: int
    next_offset: int | None = Field(description="offset of the next page; null on the last page")
    rows: list[dict[str, Any]]


def job_record(deps: ToolDeps, job_id: str) -> JobRecord:
    """The job's record, or 404 (400 for an id that cannot be one)."""
    check_job_id(job_id)
    if not deps.jobs.store.path(job_id).exists():
        adopt_cli_runs(deps.jobs)  # a run started with `caramba run` in a terminal
    if not deps.jobs.store.path(job_id).exists():
        raise NotFound(f"no run '{job_id}' in this workspace", fix="GET /api/runs lists the runs")
    return deps.jobs.get(job_id)


def _status(deps: ToolDeps, job_id: str) -> JobStatus:
    return job_status(deps, job_record(deps, job_id))


@router.post("/runs", status_code=201, response_model=JobStatus)
async def start_run(body: StartRun, deps: ToolDeps = Depends(get_deps)) -> JobStatus:
    """Validate a manifest and start it as a background run; answers at once with its id."""
    rec = await run_blocking(_start, deps, body.path, body.text, body.target, body.overrides, body.device)
    return await run_blocking(job_status, deps, rec)


@router.get("/runs", response_model=RunList)
async def list_runs(state: JobState | None = None,
                    manifest: str | None = Query(None, description="manifest file path contains this"),
                    target: str | None = None,
                    limit: int = Query(50, ge=1, le=1000), offset: int = Query(0, ge=0),
                    deps: ToolDeps = Depends(get_deps)) -> RunList:
    """Runs of this workspace (started here or over MCP), newest first, filtered."""
    await run_blocking(adopt_cli_runs, deps.jobs)
    recs = await run_blocking(deps.jobs.list)
    chosen = [r for r in recs if (state is None or r.state == state)
              and (manifest is None or manifest in r.manifest) and (target is None or r.target == target)]
    page = chosen[offset:offset + limit]
    return RunList(total=len(chosen), runs=[await run_blocking(job_status, deps, r) for r in page])


@router.get("/runs/{job_id}", response_model=JobStatus)
async def run_status(job_id: str, deps: ToolDeps = Depends(get_deps)) -> JobStatus:
    """State, step/total, latest loss and metrics of a run."""
    return await run_blocking(_status, deps, job_id)


def _metrics(deps: ToolDeps, job_id: str, split: str | None, run: str | None, offset: int, limit: int) -> MetricsPage:
    rec = job_record(deps, job_id)
    run_dir = deps.jobs.run_dir(rec)
    rows: list[dict[str, Any]] = []
    path = run_dir / "metrics.jsonl" if run_dir is not None else None
    if path is not None and path.exists():
        for raw in path.read_bytes().splitlines():
            try:
                row = json.loads(raw)
            except json.JSONDecodeError:
                continue  # a half-written last line while the run appends
            if isinstance(row, dict) and (split is None or row.get("split", "train") == split) \
                    and (run is None or row.get("run") == run):
                rows.append(row)
    page = rows[offset:offset + limit]
    nxt = offset + len(page) if offset + len(page) < len(rows) else None
    return MetricsPage(total=len(rows), offset=offset, next_offset=nxt, rows=page)


@router.get("/runs/{job_id}/metrics", response_model=MetricsPage)
async def run_metrics(job_id: str, split: str | None = Query(None, description="'train' or 'val'"),
                      run: str | None = Query(None, description="only this runs[].id"),
                      offset: int = Query(0, ge=0), limit: int = Query(500, ge=1, le=10_000),
                      deps: ToolDeps = Depends(get_deps)) -> MetricsPage:
    """Rows of metrics.jsonl (step, split, loss, lr, tokens_per_s, …), paginated."""
    return await run_blocking(_metrics, deps, job_id, split, run, offset, limit)


def relative_paths(event: dict[str, Any], root: Path) -> dict[str, Any]:
    """The event with absolute paths of the workspace shown relative to it."""
    out = dict(event)
    for key in ("path", "run_dir"):
        v = out.get(key)
        if isinstance(v, str) and v.startswith("/") and Path(v).is_relative_to(root):
            out[key] = str(Path(v).relative_to(root))
    return out


@router.get("/runs/{job_id}/events", response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "server-sent events: one per events.jsonl line, plus 'state'"}})
async def run_events(request: Request, job_id: str, offset: int = Query(0, ge=0, description="byte offset to resume at"),
                     last_event_id: str | None = Header(None), deps: ToolDeps = Depends(get_deps)) -> EventSourceResponse:
    """Live event stream of a run (SSE); ends when the run has ended."""
    rec = await run_blocking(job_record, deps, job_id)
    start = int(last_event_id) if last_event_id and last_event_id.isdigit() else offset
    return EventSourceResponse(_follow(request, deps, rec, start), ping=10)


async def _follow(request: Request, deps: ToolDeps, rec: JobRecord, start: int) -> AsyncIterator[dict[str, Any]]:
    root = deps.workspace.root
    tail: EventTail | None = None
    last_state: str | None = None
    while True:
        rec = await run_blocking(deps.jobs.get, rec.job_id)
        if rec.state != last_state:
            last_state = rec.state
            yield {"event": "state", "data": json.dumps({"state": rec.state, "message": rec.message})}
        if tail is None and (run_dir := deps.jobs.run_dir(rec)) is not None:
            tail = EventTail(run_dir / "events.jsonl", offset=start)
        events = await run_blocking(tail.read_new) if tail is not None else []
        for i, ev in enumerate(events):
            msg: dict[str, Any] = {"event": str(ev.get("event", "message")),
                                   "data": json.dumps(relative_paths(ev, root))}
            if i == len(events) - 1 and tail is not None:
                msg["id"] = str(tail.offset)  # resume point after this batch
            yield msg
        if rec.state not in ACTIVE_STATES and not events:
            final = await run_blocking(deps.jobs.get, rec.job_id)
            if final.state not in ACTIVE_STATES:
                yield {"event": "end", "data": json.dumps({"state": final.state})}
                return
        if await request.is_disconnected():
            return
        await anyio.sleep(POLL_S)


@router.post("/runs/{job_id}/cancel", response_model=JobStatus)
async def cancel_run(job_id: str, wait_s: float = Query(30.0, ge=0, le=600),
                     deps: ToolDeps = Depends(get_deps)) -> JobStatus:
    """Stop a run cleanly (current step, checkpoint, 'cancelled'); an ended run is returned as is."""
    await run_blocking(job_record, deps, job_id)
    rec = await run_blocking(deps.jobs.cancel, job_id, wait_s=wait_s)
    return await run_blocking(job_status, deps, rec)


@router.post("/runs/{job_id}/resume", response_model=JobStatus)
async def resume_run(job_id: str, deps: ToolDeps = Depends(get_deps)) -> JobStatus:
    """Continue a cancelled or interrupted run from its last checkpoint (same curve)."""
    await run_blocking(job_record, deps, job_id)
    rec = await run_blocking(deps.jobs.resume, job_id)
    return await run_blocking(job_status, deps, rec)
