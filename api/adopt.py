"""Runs started outside the servers (``caramba run`` in a terminal) join the job list.

The job manager knows the runs it launched. A researcher also starts runs by hand; their
run directories (``runs/<manifest>/<target>/<run id>/run.json``) are found here and given
a job record, so the dashboard and every run route (events, results, cancel, resume) work
for them too:

* ``manifest`` = the run's own resolved ``manifest.yml`` (re-loadable as is, and its name
  maps back to the same run directory, so ``resume`` continues that run);
* state = ``running`` while the process named in ``run.json`` is alive *and* its command
  line carries the run id (guards against a reused pid), else the terminal state of
  ``run.json``, else ``interrupted`` (resumable from its checkpoints).

Process runs (agents: ``run.json`` has ``process``) are not experiments and are skipped.
Records are written under the job store's lock; a run id that already has one is left alone.
"""

from __future__ import annotations

import time
from pathlib import Path

from caramba.tools.job_store import JOB_ID_RE, JobRecord, process_start_time
from caramba.tools.jobs import JobManager
from caramba.tools.run_files import TERMINAL_RUN_STATES, read_json


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\x00", b" ").decode(errors="replace")
    except OSError:
        return ""


def _record(jobs: JobManager, run_dir: Path, info: dict[str, object]) -> JobRecord | None:
    run_id = run_dir.name
    manifest = run_dir / "manifest.yml"
    if not JOB_ID_RE.match(run_id) or not manifest.is_file() or "process" in info:
        return None
    root = jobs.workspace.root
    state = str(info.get("state"))
    pid = info.get("pid")
    pid_start = None
    if state == "running":
        alive = isinstance(pid, int) and run_id in _cmdline(pid)
        pid_start = process_start_time(pid) if alive and isinstance(pid, int) else None
        if pid_start is None:
            state, pid = "interrupted", None
    elif state not in TERMINAL_RUN_STATES:
        return None
    created = info.get("created")
    created_ts = float(created) if isinstance(created, int | float) else time.time()
    return JobRecord(job_id=run_id, manifest=str(manifest.relative_to(root)), target=str(info.get("target") or "") or None,
                     state=state, pid=pid if state == "running" else None, pid_start=pid_start,  # type: ignore[arg-type]
                     created=created_ts, launched=created_ts, run_dir=str(run_dir.relative_to(root)),
                     log=str((jobs.store.dir / f"{run_id}.log").relative_to(root)),
                     message=None if state != "interrupted" else
                     "started outside the server; its process is gone: resume continues it from its last checkpoint")


def adopt_cli_runs(jobs: JobManager) -> int:
    """Give every experiment run directory without a job record one; returns how many."""
    runs = jobs.workspace.runs_dir
    if not runs.is_dir():
        return 0
    found = [p.parent for p in runs.glob("*/*/*/run.json")]
    if not found:
        return 0
    added = 0
    with jobs.store.locked():
        for run_dir in found:
            if not JOB_ID_RE.match(run_dir.name) or jobs.store.path(run_dir.name).exists():
                continue
            info = read_json(run_dir / "run.json")
            rec = _record(jobs, run_dir, info) if info else None
            if rec is not None:
                jobs.store.save(rec)
                added += 1
    return added
