"""Job records on disk: ``<workspace>/.caramba/jobs/<job id>.json``.

A *job* is one subprocess started by a server (MCP or the REST API): a ``caramba run``
(``kind: run``) or a ``caramba codegraph sync`` (``kind: codegraph_sync``, see
:mod:`caramba.tools.sync_jobs`). Its record is a small JSON file, rewritten atomically (temp file + rename) on
every state change, so that

* a server restart finds every job again (finished ones listed, interrupted ones marked
  and resumable), and
* several server processes on one workspace (each stdio client starts its own) see the
  same jobs. Changes that must not interleave (the concurrency check followed by the
  creation of a record) hold an exclusive ``flock`` on ``jobs/.lock``.

A run's job id is the run id passed to ``caramba run --run-id``, so a job and its run
directory share one name; a sync's job id starts with ``sync-``.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from caramba.engine.errors import CarambaError

JobState = Literal["starting", "running", "completed", "failed", "cancelled", "interrupted"]
JobKind = Literal["run", "codegraph_sync"]
ACTIVE_STATES: frozenset[str] = frozenset({"starting", "running"})
JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")


class JobError(CarambaError):
    """A job request that cannot be honoured (unknown id, limit reached, wrong state)."""


class JobRecord(BaseModel):
    """Everything a server knows about one job (a run or a code-graph sync) it started."""

    model_config = ConfigDict(extra="forbid")

    job_id: str = Field(description="the run id (also the run directory's name), or sync-<id>")
    kind: JobKind = Field("run", description="run: caramba run; codegraph_sync: caramba codegraph sync")
    manifest: str = Field("", description="workspace-relative path of the manifest the run executes ('' for a sync)")
    sync_path: str | None = Field(None, description="codegraph_sync: workspace-relative folder indexed")
    graph: str | None = Field(None, description="codegraph_sync: the code graph's name")
    target: str | None = Field(None, description="the target name, or None for the manifest's default")
    overrides: list[str] = Field(default_factory=list, description="--set dotted.path=value overrides")
    device: str | None = Field(None, description="--device passed to the run, if any")
    allow_python_impl: bool = Field(False, description="--allow-python-impl passed to the run")
    state: JobState = "starting"
    pid: int | None = None
    pid_start: int | None = Field(None, description="process start time (/proc), guards against pid reuse")
    created: float = Field(default_factory=time.time)
    launched: float = Field(default_factory=time.time, description="when the latest start/resume began")
    finished: float | None = None
    exit_code: int | None = None
    cancel_requested: bool = False
    resumes: int = Field(0, description="how many times the job was resumed")
    run_dir: str | None = Field(None, description="workspace-relative run directory, once it exists")
    log: str = Field(description="workspace-relative file with the subprocess's stdout and stderr")
    message: str | None = Field(None, description="why the job failed or was interrupted")


def new_job_id() -> str:
    """``YYYYmmdd-HHMMSS-<8 hex>``: sortable by time, unique under concurrency."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(4)


def check_job_id(job_id: str) -> str:
    """Refuse ids that could not have been made by :func:`new_job_id` (and path tricks)."""
    if not JOB_ID_RE.match(job_id):
        raise JobError(f"'{job_id}' is not a valid job id",
                       fix="use a job id returned by run_manifest or list_runs")
    return job_id


class JobStore:
    """The folder of job records, with an inter-process lock."""

    def __init__(self, jobs_dir: Path) -> None:
        self.dir = jobs_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self._thread_lock = threading.RLock()
        self._depth = 0

    def path(self, job_id: str) -> Path:
        return self.dir / f"{check_job_id(job_id)}.json"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive lock across every thread and process using this workspace.

        Re-entrant within a thread: only the outermost holder takes the ``flock`` (a
        second ``flock`` on a new descriptor from the same process would deadlock).
        """
        with self._thread_lock:
            self._depth += 1
            try:
                if self._depth > 1:
                    yield
                    return
                with (self.dir / ".lock").open("a") as f:
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX)
                    try:
                        yield
                    finally:
                        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            finally:
                self._depth -= 1

    def save(self, rec: JobRecord) -> None:
        """Write atomically: readers see the old or the new record, never half of one."""
        dst = self.path(rec.job_id)
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
        tmp.write_text(rec.model_dump_json(indent=2))
        os.replace(tmp, dst)

    def load(self, job_id: str) -> JobRecord:
        p = self.path(job_id)
        if not p.exists():
            raise JobError(f"no job '{job_id}' in this workspace",
                           fix="list_runs shows the jobs this workspace knows")
        try:
            return JobRecord.model_validate_json(p.read_text())
        except ValidationError as e:
            raise JobError(f"job record {p} is corrupt: {e.errors()[0]['msg']}",
                           fix=f"delete {p} (the run directory itself is untouched)") from None

    def all(self) -> list[JobRecord]:
        """Every readable record, newest first (corrupt ones are skipped, not fatal)."""
        out: list[JobRecord] = []
        for p in self.dir.glob("*.json"):
            try:
                out.append(JobRecord.model_validate_json(p.read_text()))
            except (ValidationError, OSError):
                continue
        return sorted(out, key=lambda r: r.created, reverse=True)


def process_start_time(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (Linux ``/proc``), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may contain spaces: split after its closing paren
    fields = stat[stat.rfind(")") + 2:].split()
    return int(fields[19]) if len(fields) > 19 else None


def pid_alive(pid: int, start: int | None) -> bool:
    """True when ``pid`` runs and is the same process (same start time) and not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "Z":
            return False
    except (OSError, IndexError):
        pass
    return start is None or process_start_time(pid) == start
