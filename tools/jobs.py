"""The job manager: runs (and code-graph syncs) as background subprocesses that outlive
their requester.

``JobManager.start`` launches ``python -m caramba run FILE --run-id ID …`` in its own
session (``start_new_session``), output to a log file. The run therefore survives the
MCP client disconnecting and even the server exiting; the record under
``.caramba/jobs/`` (see :mod:`caramba.tools.job_store`) lets any later server find it.

State is *derived*, never guessed: on every read a live job is checked against its
process (pid + start time) and the run's own ``run.json``:

* process alive → ``running``;
* process gone, ``run.json`` terminal → that state (``completed|failed|cancelled``);
* process gone, we asked it to stop → ``cancelled``;
* process gone with an error exit code and no final run state → ``failed`` (log tail as
  message);
* process killed by a signal, or gone while ``run.json`` still says running →
  ``interrupted`` (SIGKILL, OOM, machine restart): resumable with
  :meth:`JobManager.resume` from its checkpoints.

Cancelling sends SIGTERM; the runner stops after the current step and writes a
checkpoint (docs/internals.md), so a cancelled job keeps its checkpoints.

Code-graph syncs (``start_sync``) are jobs of ``kind: codegraph_sync`` in the same store,
counted against the same ``max_running``; their command and state rules live in
:mod:`caramba.tools.sync_jobs`. ``list()`` returns runs only (``list(kind=None)``: all).

This module is free of MCP types so that the REST API can reuse it::

    jobs = JobManager(Workspace(root), max_running=4)
    rec = jobs.start(Path("manifests/tiny.yml"), target="train", overrides=["trainer.config.steps=5"])
    jobs.get(rec.job_id).state   # 'running' … 'completed'
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from caramba.tools import sync_jobs
from caramba.tools.job_store import (
    ACTIVE_STATES, JobError, JobKind, JobRecord, JobStore, check_job_id, new_job_id, pid_alive,
    process_start_time,
)
from caramba.tools.run_files import TERMINAL_RUN_STATES, find_run_dir, has_checkpoint, read_json, read_progress
from caramba.workspace import Workspace

DEFAULT_MAX_RUNNING = 4
GRAPH_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
STARTING_GRACE_S = 60.0  # a record without a pid yet counts as launching this long


class JobManager:
    """Start, follow, cancel and resume ``caramba run`` subprocesses of one workspace."""

    def __init__(self, workspace: Workspace, *, max_running: int = DEFAULT_MAX_RUNNING,
                 python: str = sys.executable) -> None:
        if max_running < 1:
            raise JobError(f"max_running must be at least 1, got {max_running}")
        self.workspace = workspace
        self.max_running = max_running
        self.python = python
        self.store = JobStore(workspace.state_dir / "jobs")
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    # ----------------------------------------------------------------- starting
    def start(self, manifest: Path, *, target: str | None = None, overrides: list[str] | None = None,
              device: str | None = None, allow_python_impl: bool = False) -> JobRecord:
        """Launch a run of ``manifest`` (a file inside the workspace) and return its record."""
        rel = self._rel(manifest)
        job_id = new_job_id()
        rec = JobRecord(job_id=job_id, manifest=rel, target=target, overrides=list(overrides or []),
                        device=device, allow_python_impl=allow_python_impl,
                        log=self._rel(self.store.dir / f"{job_id}.log"))
        with self.store.locked():
            self._check_capacity()
            self.store.save(rec)
        return self._launch(rec, resume=False)

    def start_sync(self, path: Path, *, graph: str | None = None) -> JobRecord:
        """Launch ``caramba codegraph sync`` of ``path`` (a folder inside the workspace) into
        graph ``graph`` (default: the folder's name) and return its record."""
        full = self.workspace.resolve(path, must_exist=True)
        if not full.is_dir():
            raise JobError(f"'{path}' is not a folder", fix="pass a folder of the workspace to index")
        name = graph or full.name
        if not GRAPH_NAME_RE.match(name):
            raise JobError(f"'{name}' is not a usable code graph name",
                           fix="pass graph=<letters, digits, '_', '-', '.'> (it must not start with '-' or '.')")
        job_id = sync_jobs.SYNC_PREFIX + new_job_id()
        rec = JobRecord(job_id=job_id, kind="codegraph_sync", sync_path=self._rel(full) or ".", graph=name, log=self._rel(self.store.dir / f"{job_id}.log"))
        with self.store.locked():
            self._check_capacity()
            self.store.save(rec)
        return self._launch(rec, resume=False)

    def get_sync(self, job_id: str) -> JobRecord:
        """A sync job's record (a run's id is refused with a pointer to the run tools)."""
        rec = self.get(job_id)
        if rec.kind != "codegraph_sync":
            raise JobError(f"job '{job_id}' is a run, not a code-graph sync",
                           fix="use run_status / wait_run / cancel_run for runs")
        return rec

    def resume(self, job_id: str) -> JobRecord:
        """Continue an interrupted, cancelled or failed job from its last checkpoint (a sync:
        run it again, incrementally)."""
        with self.store.locked():
            rec = self.get(job_id)
            if rec.state in ACTIVE_STATES:
                raise JobError(f"job '{job_id}' is still {rec.state}",
                               fix="wait until it ends, or cancel it first")
            if rec.kind == "codegraph_sync":
                return self._relaunch(rec)
            if rec.state == "completed":
                raise JobError(f"job '{job_id}' already completed; nothing to resume",
                               fix="start a new run with run_manifest")
            run_dir = self.run_dir(rec)
            if run_dir is None or not has_checkpoint(run_dir):
                raise JobError(f"job '{job_id}' has no checkpoint to resume from",
                               fix="start a new run with run_manifest (the run never reached a checkpoint)")
            return self._relaunch(rec)

    def _relaunch(self, rec: JobRecord) -> JobRecord:
        self._check_capacity()
        rec = rec.model_copy(update={"state": "starting", "pid": None, "pid_start": None,
                                     "launched": time.time(), "finished": None, "exit_code": None,
                                     "cancel_requested": False, "message": None,
                                     "resumes": rec.resumes + 1})
        self.store.save(rec)
        return self._launch(rec, resume=True)

    def _check_capacity(self) -> None:
        running = [r for r in self.list(kind=None) if r.state in ACTIVE_STATES]
        if len(running) >= self.max_running:
            names = ", ".join(r.job_id for r in running)
            raise JobError(
                f"{len(running)} jobs (runs and code-graph syncs) are already active (limit "
                f"{self.max_running}): {names}",
                fix="wait for one to finish (wait_run / wait_sync), cancel one (cancel_run / cancel_sync), "
                    "or restart the server with a larger --max-jobs")

    def _command(self, rec: JobRecord, resume: bool) -> list[str]:
        if rec.kind == "codegraph_sync":
            events = sync_jobs.events_path(self.store.dir, rec.job_id)
            events.write_bytes(b"")  # a re-run reports afresh
            return sync_jobs.sync_command(self.python, rec, events)
        cmd = [self.python, "-m", "caramba", "run", rec.manifest, "--run-id", rec.job_id]
        if rec.target:
            cmd += ["--target", rec.target]
        for ov in rec.overrides:
            cmd += ["--set", ov]
        if rec.device:
            cmd += ["--device", rec.device]
        if rec.allow_python_impl:
            cmd.append("--allow-python-impl")
        if resume:
            cmd.append("--resume")
        return cmd

    def _launch(self, rec: JobRecord, *, resume: bool) -> JobRecord:
        cmd = self._command(rec, resume)
        env = dict(os.environ, CARAMBA_WORKSPACE=str(self.workspace.root), PYTHONUNBUFFERED="1")
        log_path = self.workspace.root / rec.log
        with log_path.open("ab") as log:
            log.write(f"$ {' '.join(cmd)}\n".encode())
            log.flush()
            proc = subprocess.Popen(cmd, cwd=self.workspace.root, env=env, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._children[rec.job_id] = proc
        rec = rec.model_copy(update={"state": "running", "pid": proc.pid,
                                     "pid_start": process_start_time(proc.pid)})
        self.store.save(rec)
        return rec

    # ------------------------------------------------------------------ reading
    def get(self, job_id: str) -> JobRecord:
        """The job's record with its state brought up to date."""
        return self._refresh(self.store.load(check_job_id(job_id)))

    def list(self, kind: JobKind | None = "run") -> list[JobRecord]:
        """Every job of that kind (None: all) in the workspace, newest first, states up to date."""
        return [self._refresh(r) for r in self.store.all() if kind is None or r.kind == kind]

    def run_dir(self, rec: JobRecord) -> Path | None:
        """The job's run directory, once the run has created it (None for syncs)."""
        if rec.kind != "run":
            return None
        if rec.run_dir:
            return self.workspace.root / rec.run_dir
        found = find_run_dir(self.workspace.runs_dir, rec.job_id)
        return found

    def _refresh(self, rec: JobRecord) -> JobRecord:
        run_dir = self.run_dir(rec)
        needs_dir = run_dir is not None and rec.run_dir is None
        if not needs_dir and not (rec.state in ACTIVE_STATES and not self._alive(rec)):
            return rec
        with self.store.locked():
            rec = self.store.load(rec.job_id)  # another thread/process may have changed it
            updates: dict[str, object] = {}
            if run_dir is not None and rec.run_dir is None:
                updates["run_dir"] = self._rel(run_dir)
            if rec.state in ACTIVE_STATES and not self._alive(rec):
                updates.update(self._final_state(rec, run_dir))
            if updates:
                rec = rec.model_copy(update=updates)
                self.store.save(rec)
        return rec

    def _alive(self, rec: JobRecord) -> bool:
        if rec.pid is None and rec.state == "starting":
            # being launched by some server right now (a crash during launch times out)
            return time.time() - rec.launched < STARTING_GRACE_S
        child = self._children.get(rec.job_id)
        if child is not None and child.pid == rec.pid:
            return child.poll() is None
        return rec.pid is not None and pid_alive(rec.pid, rec.pid_start)

    def _final_state(self, rec: JobRecord, run_dir: Path | None) -> dict[str, object]:
        child = self._children.pop(rec.job_id, None)
        code = child.returncode if child is not None and child.pid == rec.pid else None
        if rec.kind == "codegraph_sync":
            events = sync_jobs.read_events(sync_jobs.events_path(self.store.dir, rec.job_id))
            return sync_jobs.final_state(rec, events, code, lambda: self._log_tail(rec))
        info = read_json(run_dir / "run.json") if run_dir is not None else None
        run_state = info.get("state") if info else None
        out: dict[str, object] = {"finished": time.time(), "exit_code": code}
        if run_state in TERMINAL_RUN_STATES:
            out["state"] = run_state
            if run_state == "failed":
                out["message"] = self._failure(rec, run_dir)
        elif rec.cancel_requested:
            out["state"] = "cancelled"
        elif code is not None and code > 0:
            out["state"] = "failed"
            out["message"] = self._failure(rec, run_dir)
        else:  # killed by a signal, or not our child (we cannot know its exit code)
            out["state"] = "interrupted"
            out["message"] = ("the run's process ended without finishing (killed, or the machine "
                              "restarted); resume_run continues it from its last checkpoint")
        return out

    def _failure(self, rec: JobRecord, run_dir: Path | None) -> str:
        """Why a run failed: its own ``error`` event — or, when it failed before writing one,
        the CLI's closing ``error: <message>\n  fix: <fix>`` — first, then the tail of its
        output (the log lives in the private ``.caramba/`` folder clients cannot read)."""
        error = read_progress(run_dir).error if run_dir is not None else None
        tail = self._log_tail(rec)
        if error is None:
            at = ("\n" + tail).rfind("\nerror: ")
            error = tail[at + len("error: "):].strip() if at >= 0 else None
        return f"{error}\n\nlast output of the run:\n{tail}" if error else tail

    def _log_tail(self, rec: JobRecord, limit: int = 2000) -> str:
        path = self.workspace.root / rec.log
        try:
            text = path.read_bytes()[-limit:].decode(errors="replace")
        except OSError:
            return "the run failed (no log available)"
        return text.strip() or "the run failed without output"

    # --------------------------------------------------------------- cancelling
    def cancel(self, job_id: str, *, wait_s: float = 0.0) -> JobRecord:
        """SIGTERM the run (it checkpoints and stops after the current step).

        ``wait_s`` > 0 waits up to that long for the process to end. Cancelling a job
        that already ended is not an error: its record is returned unchanged.
        """
        rec = self.get(job_id)
        if rec.state not in ACTIVE_STATES:
            return rec
        with self.store.locked():
            rec = self.store.load(job_id).model_copy(update={"cancel_requested": True})
            self.store.save(rec)
        if rec.pid is not None and self._alive(rec):
            try:
                os.kill(rec.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        while wait_s > 0 and time.monotonic() < deadline and self._alive(rec):
            time.sleep(0.1)
        return self.get(job_id)

    # -------------------------------------------------------------------- paths
    def _rel(self, path: Path) -> str:
        full = self.workspace.resolve(path)
        return str(full.relative_to(self.workspace.root))
