"""Entry points other components call to write memory: finished runs, transcripts, notes.

``record_run_result(workspace, run_dir)`` is what the runner (or the MCP job layer) calls
when a run finishes: when ``memory.enabled`` is true — in ``caramba.yml``, or in the
``defaults.memory`` of the run's manifest, which wins per field
(:mod:`caramba.memory.settings`) — it reads the run directory (:mod:`caramba.memory.runs`) and adds one ``run`` episode to the project's
Graphiti group (``memory.group_id``, same merge) — manifest name, target, final metrics, verdicts and artifacts — with the
run's start time as the episode's reference time. When memory is disabled it does
nothing and returns ``None``, so callers may call it unconditionally. Errors (no LLM,
FalkorDB unreachable) raise :class:`~caramba.engine.errors.CarambaError`; a caller that
must not fail a finished run on a memory problem catches that and reports it.

Sync wrappers (``*_sync``) run the async API on a private event loop, for the CLI and
for synchronous callers; do not call them from inside a running event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from caramba.memory.graph_memory import EpisodeResult, GraphMemory
from caramba.memory.runs import read_run
from caramba.memory.settings import run_memory_config
from caramba.memory.timefilter import parse_instant
from caramba.workspace import CarambaConfig, Workspace

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a fresh event loop."""
    return asyncio.run(coro)


async def record_run_result(workspace: Workspace, run_dir: Path, *, group: str | None = None,
                            force: bool = False, config: CarambaConfig | None = None) -> EpisodeResult | None:
    """Add a finished run to memory (see the module docstring). ``force`` writes even when
    ``memory.enabled`` is false (e.g. ``caramba memory add --run DIR``); ``config`` replaces
    the merge of ``caramba.yml`` and the run's ``manifest.yml``."""
    cfg = config or run_memory_config(workspace, Path(run_dir))
    if not force and not cfg.memory.enabled:
        return None
    summary = read_run(Path(run_dir))
    ref = parse_instant(summary.created, what="run.json created") if summary.created else datetime.now(UTC)
    async with GraphMemory(workspace, group=group, config=cfg) as mem:
        return await mem.add_episode(
            summary.text(), name=f"run {summary.manifest}/{summary.target}/{summary.run_id}",
            kind="run", source_description=f"run result of {summary.manifest}",
            reference_time=ref)


def record_run_result_sync(workspace: Workspace, run_dir: Path, *, group: str | None = None,
                           force: bool = False, config: CarambaConfig | None = None) -> EpisodeResult | None:
    return run_sync(record_run_result(workspace, run_dir, group=group, force=force, config=config))


async def record_transcript(workspace: Workspace, text: str, *, name: str, process: str = "brainstorm",
                            group: str | None = None, config: CarambaConfig | None = None) -> EpisodeResult:
    """Add a brainstorm/review transcript (the agents call this at the end of a process,
    passing ``memory_config(ws, manifest.defaults.memory)`` as ``config``)."""
    async with GraphMemory(workspace, group=group, config=config) as mem:
        return await mem.add_transcript(text, name=name, process=process)
