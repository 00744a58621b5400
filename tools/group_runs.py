"""Run lifecycle tools: ``run_manifest``, ``run_status``, ``wait_run``, ``cancel_run``,
``resume_run``, ``list_runs``.

A run is a background job (:mod:`caramba.tools.jobs`): ``run_manifest`` validates the
manifest, starts ``caramba run`` as a subprocess and returns its id at once. ``wait_run``
follows the run's ``events.jsonl`` and sends MCP progress notifications (progress =
optimizer steps done so far across the target's runs, message = ``run: step s/t loss``).

Cancellation: ``cancel_run`` stops a job (SIGTERM → checkpoint → ``cancelled``). A client
that cancels its ``wait_run`` request with ``notifications/cancelled`` (stdio, or legacy
HTTP sessions) cancels the job too. A client that merely disconnects does not: the run
keeps going and any later client can pick it up. (On the 2026 streamable-HTTP wire a
cancel is the closing of the response stream, which cannot be told apart from a
disconnect, so there the run keeps going; use ``cancel_run``.)
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from caramba.engine.errors import CarambaError
from caramba.tools import manifest_input
from caramba.tools.common import ToolDeps, run_blocking, tool_errors
from caramba.tools.job_store import ACTIVE_STATES, JobError, JobRecord, JobState
from caramba.tools.run_files import EventTail, RunProgress, has_checkpoint, last_metrics, read_progress

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
JobIdArg = Annotated[str, Field(description="job id returned by run_manifest (it is also the run id)")]
POLL_S = 0.2
MAX_WAITING = 4096


class JobStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: str
    state: JobState
    manifest: str
    target: str | None
    overrides: list[str]
    created: float
    finished: float | None
    exit_code: int | None
    run_dir: str | None = Field(description="workspace-relative run directory")
    message: str | None = Field(description="why it failed or was interrupted")
    resumable: bool = Field(description="true when resume_run can continue it from a checkpoint")
    progress: RunProgress
    metrics: dict[str, dict[str, Any]] = Field(description="latest metrics.jsonl row per split")


class WaitResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: JobStatus
    timed_out: bool = Field(description="true when the run was still active at the timeout")


class JobList(BaseModel):
    model_config = ConfigDict(extra="forbid")
    jobs: list[JobStatus]


def job_status(deps: ToolDeps, rec: JobRecord) -> JobStatus:
    """A record plus what its run directory says (progress, metrics, checkpoints)."""
    if rec.kind != "run":
        raise JobError(f"job '{rec.job_id}' is a code-graph sync, not a run",
                       fix="use sync_status / wait_sync / cancel_sync for syncs")
    run_dir = deps.jobs.run_dir(rec)
    progress = read_progress(run_dir) if run_dir is not None else RunProgress()
    metrics = last_metrics(run_dir) if run_dir is not None else {}
    resumable = (rec.state in ("interrupted", "cancelled", "failed") and run_dir is not None
                 and has_checkpoint(run_dir))
    return JobStatus(job_id=rec.job_id, state=rec.state, manifest=rec.manifest, target=rec.target,
                     overrides=rec.overrides, created=rec.created, finished=rec.finished,
                     exit_code=rec.exit_code, run_dir=rec.run_dir, message=rec.message,
                     resumable=resumable, progress=progress, metrics=metrics)


def _start(deps: ToolDeps, path: str | None, text: str | None, target: str | None,
           overrides: list[str], device: str | None) -> JobRecord:
    from caramba.engine.manifest import load_manifest
    from caramba.engine.train.device import resolve_device

    if device is not None:
        resolve_device(device)  # 'banana', or cuda on a CPU-only host: refused now, not as a failed job
    file = manifest_input.materialize(deps, path, text)
    manifest = manifest_input.checked(deps, load_manifest(file, overrides=overrides,
                                                          allow_python_impl=deps.allow_python_impl))
    chosen = manifest.target(target)  # raises, listing the names, for an unknown target
    if not hasattr(chosen, "system"):
        raise CarambaError(f"target '{chosen.name}' is a process target (agents), not an experiment",
                           fix="run_manifest runs experiment targets; start process targets with the agents CLI")
    return deps.jobs.start(file, target=chosen.name, overrides=overrides, device=device,
                           allow_python_impl=deps.allow_python_impl)


def register(server: MCPServer, deps: ToolDeps) -> None:
    """Add the run lifecycle tools."""
    jobs = deps.jobs

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False))
    @tool_errors
    async def run_manifest(
        path: Annotated[str | None, Field(description="manifest file in the workspace, or 'preset:<name>'")] = None,
        text: Annotated[str | None, Field(description="manifest YAML text (instead of path)")] = None,
        target: Annotated[str | None, Field(description="target or entrypoint; default: the manifest's default")] = None,
        overrides: Annotated[list[str], Field(description="'dotted.path=value' overrides (like --set)")] = [],  # noqa: B006
        device: Annotated[str | None, Field(description="'cpu', 'cuda', 'cuda:1'; default: the run picks")] = None,
    ) -> JobStatus:
        """Validate a manifest and start it as a background run; returns the job id at once.
        Follow it with wait_run or run_status."""
        rec = await run_blocking(_start, deps, path, text, target, overrides, device)
        return await run_blocking(job_status, deps, rec)

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def run_status(job_id: JobIdArg) -> JobStatus:
        """State, step/total, latest loss and metrics of a run."""
        rec = await run_blocking(jobs.get, job_id)
        return await run_blocking(job_status, deps, rec)

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def list_runs(
        state: Annotated[JobState | None, Field(description="only jobs in this state")] = None,
        limit: Annotated[int, Field(ge=1, le=1000, description="newest first, at most this many")] = 50,
    ) -> JobList:
        """Runs started through this workspace's servers, newest first (survives restarts;
        'interrupted' runs can be resumed with resume_run)."""
        recs = await run_blocking(jobs.list)
        chosen = [r for r in recs if state is None or r.state == state][:limit]
        return JobList(jobs=[await run_blocking(job_status, deps, r) for r in chosen])

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False))
    @tool_errors
    async def cancel_run(
        job_id: JobIdArg,
        wait_s: Annotated[float, Field(ge=0, le=600, description="seconds to wait for the run to stop")] = 30.0,
    ) -> JobStatus:
        """Stop a run cleanly: it finishes its current step, writes a checkpoint and ends
        'cancelled' (resumable with resume_run)."""
        rec = await run_blocking(jobs.cancel, job_id, wait_s=wait_s)
        return await run_blocking(job_status, deps, rec)

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False))
    @tool_errors
    async def resume_run(job_id: JobIdArg) -> JobStatus:
        """Continue an interrupted or cancelled run from its last checkpoint (same curve)."""
        rec = await run_blocking(jobs.resume, job_id)
        return await run_blocking(job_status, deps, rec)

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def wait_run(
        job_id: JobIdArg,
        ctx: Context,
        timeout_s: Annotated[float, Field(gt=0, le=86400, description="give up waiting after this long")] = 600.0,
    ) -> WaitResult:
        """Wait for a run to end, streaming progress notifications (step/total, loss).
        Cancelling this request (notifications/cancelled) cancels the run."""
        async with cancels_job(deps, ctx, job_id):
            return await _follow(deps, ctx, job_id, timeout_s)


async def _follow(deps: ToolDeps, ctx: Context, job_id: str, timeout_s: float) -> WaitResult:
    deadline = time.monotonic() + timeout_s
    tail: EventTail | None = None
    prog = RunProgress()
    done_steps = 0  # steps of runs[] that already finished: keeps progress monotonic
    while True:
        rec = await run_blocking(deps.jobs.get, job_id)
        if tail is None and (run_dir := deps.jobs.run_dir(rec)) is not None:
            tail = EventTail(run_dir / "events.jsonl")
        for ev in (await run_blocking(tail.read_new) if tail is not None else []):
            before = prog.run, prog.step or 0
            prog.apply(ev)
            if ev.get("event") == "run_started" and before[0] is not None:
                done_steps += before[1]
            if ev.get("event") == "progress" and prog.step is not None:
                loss = f" loss {prog.loss:.4f}" if prog.loss is not None else ""
                await ctx.report_progress(done_steps + prog.step,
                                          done_steps + prog.total if prog.total else None,
                                          f"{prog.run}: step {prog.step}/{prog.total}{loss}")
        if rec.state not in ACTIVE_STATES:
            return WaitResult(status=await run_blocking(job_status, deps, rec), timed_out=False)
        if time.monotonic() >= deadline:
            return WaitResult(status=await run_blocking(job_status, deps, rec), timed_out=True)
        await anyio.sleep(POLL_S)


def peer_key(request_ctx: Any, request_id: Any) -> tuple[str, str]:
    """Who sent a request: ``(HTTP session id or '-', request id)``.

    The SDK builds a fresh session object per message on the 2026 protocol, so object
    identity cannot tie a ``notifications/cancelled`` to its request. A stdio server has
    exactly one peer; legacy HTTP sessions carry ``mcp-session-id``.
    """
    req = getattr(request_ctx, "request", None)
    headers = getattr(req, "headers", None)
    sid = headers.get("mcp-session-id") if headers is not None else None
    return (sid or "-", str(request_id))


@asynccontextmanager
async def cancels_job(deps: ToolDeps, ctx: Context, job_id: str) -> AsyncIterator[None]:
    """While the body runs, a ``notifications/cancelled`` for this request cancels ``job_id``
    (a run or a sync; see :func:`cancel_middleware`)."""
    key = peer_key(ctx.request_context, ctx.request_id)
    if len(deps.waiting) >= MAX_WAITING:
        deps.waiting.clear()  # stale keys of waits cancelled by disconnects
    deps.waiting[key] = job_id
    cancelled = False
    try:
        yield
    except anyio.get_cancelled_exc_class():
        # keep the key: the peer's notifications/cancelled (processed after the
        # handler was interrupted) finds it in cancel_middleware and stops the job
        cancelled = True
        raise
    finally:
        if not cancelled:
            deps.waiting.pop(key, None)


def cancel_middleware(deps: ToolDeps) -> Any:
    """Server middleware: an explicit ``notifications/cancelled`` for a waiting request
    (``wait_run``, ``wait_sync``, ``codegraph_sync`` with wait) cancels the job it followed."""

    async def middleware(ctx: Any, call_next: Any) -> Any:
        if ctx.method == "notifications/cancelled" and isinstance(ctx.params, dict):
            job_id = deps.waiting.pop(peer_key(ctx, ctx.params.get("requestId")), None)
            if job_id is not None:
                await run_blocking(deps.jobs.cancel, job_id)
        return await call_next(ctx)

    return middleware

