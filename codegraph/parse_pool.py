"""Parse many Python files, on every core for big batches, without leaving processes behind.

    facts = parse_many([(source_bytes, "pkg/mod.py", "pkg.mod"), ...], tick=lock.refresh)

``ast`` parsing is CPU-bound and holds the GIL, so a sync of hundreds of files parses them in
worker processes (forked: they need no imports of their own). The workers are owned
completely by the sync that started them:

* **Interrupts stop the parent, which stops the workers.** Workers ignore SIGINT (a Ctrl-C
  in a terminal reaches the whole process group; only the parent decides) and take SIGTERM
  at its default (die at once). When the parent stops for any reason — Ctrl-C, SIGTERM from
  a job manager's cancel (turned into ``KeyboardInterrupt`` by the CLI), an error — the pool
  is terminated before the exception goes on, so the sync exits promptly.
* **A killed parent takes its workers with it.** A SIGKILLed sync cannot clean up; each
  worker watches its parent and exits within a second of it disappearing, instead of
  idling forever (holding the parent's stdout/stderr pipes open, so whoever read them
  would wait forever too).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from caramba.codegraph.parse import FileFacts, parse_python

PARALLEL_MIN_FILES = 64  # below this, starting worker processes costs more than it saves
PARENT_POLL_S = 0.5  # how often a worker checks that its parent is alive

Job = tuple[bytes, str, str]  # (source, relative path, dotted module name)


def _parse_job(job: Job) -> FileFacts:
    return parse_python(job[0], path=job[1], module=job[2])


def _worker_init(parent: int) -> None:
    """Runs first in every worker: SIGINT ignored, SIGTERM default, exit when orphaned."""
    import signal
    import threading
    import time

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def parse_many(jobs: list[Job], tick: Callable[[], Any],
               parsed: Callable[[int], None] = lambda n: None) -> list[FileFacts]:
    """Parse ``(source, path, module)`` jobs in order. ``tick`` keeps the sync lock alive
    meanwhile (every 200 files); ``parsed(n)`` is told every 16 files how many are done."""
    workers = min(os.cpu_count() or 1, 8)
    if len(jobs) < PARALLEL_MIN_FILES or workers < 2:
        return _collect(map(_parse_job, jobs), tick, parsed)
    import multiprocessing

    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    pool = ctx.Pool(workers, initializer=_worker_init, initargs=(os.getpid(),))
    try:
        return _collect(pool.imap(_parse_job, jobs, chunksize=16), tick, parsed)
    finally:
        pool.terminate()  # done, interrupted or failed: no worker outlives this call
        pool.join()


def _collect(results: Any, tick: Callable[[], Any], parsed: Callable[[int], None]) -> list[FileFacts]:
    out: list[FileFacts] = []
    for i, facts in enumerate(results):
        out.append(facts)
        if i % 16 == 15:
            parsed(i + 1)
        if i % 200 == 199:
            tick()
    return out
