"""``run_target``: train every run of one experiment target and write its run directory.

::

    from caramba.engine.manifest import load_manifest
    from caramba.engine.runner import run_target
    result = run_target(load_manifest("manifests/mlp_classifier.yml"))
    result.run_dir, result.state, result.results["train"]["val_accuracy"]

Pipeline for a target: choose the run directory (fresh, ``run_id``, or ``resume``) →
write ``manifest.yml`` and ``run.json`` → build the system once (seeded with the first
run's seed) → for each ``runs[]`` entry in order: resolve its train options, build the
data, train (continuing from the run's last checkpoint when resuming; a run whose final
checkpoint exists is skipped, its weights loaded) → artifacts and ``results.json`` →
``run.json`` state ``completed`` (or ``cancelled`` on SIGTERM/SIGINT, ``failed`` on an
error, which is also written to ``events.jsonl`` before it propagates).

Data-parallel targets (``train.distributed: ddp|fsdp``, see
:mod:`caramba.engine.train.distributed`) run this on every rank: rank 0 picks the run
directory and is the only one that writes it (events, metrics, artifacts, ``run.json``
with a ``distributed`` roster of every rank's pid and host).

The model carries over from one run to the next (e.g. a pre-train run then a
fine-tune run); each run gets a fresh optimizer and schedule.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caramba.engine.errors import CarambaError
from caramba.workspace import Workspace


@dataclass
class RunResult:
    """What a finished (or stopped) target run produced."""

    run_dir: Path
    run_id: str
    target: str
    state: str  # completed | cancelled
    results: dict[str, dict[str, float]] = field(default_factory=dict)  # runs[].id -> final metrics
    artifacts: list[Path] = field(default_factory=list)


def run_target(manifest: Any, target: str | None = None, run_id: str | None = None, resume: bool = False,
               device: str | None = None, workspace: Workspace | None = None,
               on_event: Callable[[dict[str, Any]], None] | None = None, *,
               argv: list[str] | None = None, console: bool = True) -> RunResult:
    """Train one experiment target of a loaded manifest; see the module docstring."""
    from caramba.engine.manifest import ExperimentTarget
    from caramba.engine.train.distributed import open_parallel
    from caramba.engine.train.loggers import check_wandb
    from caramba.engine.train.options import resolve_logging
    from caramba.engine.train.rundir import target_dir

    tgt = manifest.target(target)
    if not isinstance(tgt, ExperimentTarget):
        raise CarambaError(f"target '{tgt.name}' is a process target (an agent workflow), not an experiment",
                           fix="run it with the agents (caramba brainstorm/process commands), or pick an experiment target")
    from caramba.engine.verify.apples import enforce_apples_to_apples

    enforce_apples_to_apples(manifest)
    from caramba.engine.train.device import resolve_device

    for run in tgt.runs:  # a device that does not exist here fails before any run directory is made
        resolve_device(device or getattr(run.train, "device", "auto"))
    log_opts = resolve_logging(manifest.defaults.logging)
    check_wandb(log_opts)
    ws = workspace or Workspace()
    folder = target_dir(ws.runs_dir, manifest.name, tgt.name)
    from caramba.engine.data.preflight import check_data_files
    from caramba.engine.train.init_weights import check_start_weights
    from caramba.engine.train.target import _manifest_dir

    manifest_dir = _manifest_dir(manifest)  # start weights and input files: located errors, no run dir
    check_start_weights(manifest, tgt, folder, workspace_root=ws.root, manifest_dir=manifest_dir)
    check_data_files(manifest, tgt, ws, manifest_dir)
    parallel = open_parallel(tgt, device=device)  # a process group when the runs set train.distributed
    try:
        return _run_target(manifest, tgt, ws, folder, parallel, log_opts, run_id=run_id, resume=resume,
                           device=device, on_event=on_event, argv=argv, console=console)
    except BaseException as e:
        parallel.record_failure(e)  # the launcher shows which rank failed and why
        if isinstance(e, CarambaError) and parallel.world_size > 1:
            e.message = f"rank {parallel.rank}/{parallel.world_size}: {e.message}"
        raise
    finally:
        parallel.close()


def _run_target(manifest: Any, tgt: Any, ws: Workspace, folder: Path, parallel: Any, log_opts: Any, *,
                run_id: str | None, resume: bool, device: str | None,
                on_event: Callable[[dict[str, Any]], None] | None, argv: list[str] | None, console: bool) -> RunResult:
    """:func:`run_target` once the process group (if any) is up: only rank 0 writes."""
    from caramba.engine.train.console import make_console
    from caramba.engine.train.distributed import NullRecorder
    from caramba.engine.train.loggers import make_trackers
    from caramba.engine.train.recorder import RunRecorder
    from caramba.engine.train.rundir import RunInfo, choose_run_dir, write_text
    from caramba.engine.train.signals import StopSignals
    from caramba.engine.train.resume_check import check_resume_manifest, check_resume_steps

    def decide() -> tuple[Path, str, bool, list[str]]:
        chosen_dir, chosen_id, is_resume = choose_run_dir(folder, run_id=run_id, resume=resume)
        changed: list[str] = []
        if is_resume:  # refuse a resume that would train a different experiment, or a shorter one
            changed = check_resume_manifest(chosen_dir / "manifest.yml", manifest, chosen_id)
            check_resume_steps(chosen_dir, manifest, tgt)
        return chosen_dir, chosen_id, is_resume, changed

    run_dir, rid, resuming, changes = parallel.share(decide)
    argv = list(sys.argv) if argv is None else argv
    roster = parallel.roster()  # every rank's pid and host (collective)
    if not parallel.is_main:
        recorder: Any = NullRecorder()
        info: Any = None
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        if resuming:
            info = RunInfo.resume(run_dir, argv)
            if changes:  # allowed changes (steps, cadence, device, logging): the saved manifest follows
                write_text(run_dir / "manifest.yml", manifest.resolved_yaml())
        else:
            write_text(run_dir / "manifest.yml", manifest.resolved_yaml())
            info = RunInfo.start(run_dir, manifest=manifest.name, target=tgt.name, run_id=rid, argv=argv)
        if parallel.strategy != "none":
            info.data["distributed"] = {"strategy": parallel.strategy, "world_size": parallel.world_size,
                                        "ranks": roster}
            info.save()
        sinks: list[Any] = []
        if console and log_opts.instrument != "none":
            sinks.append(make_console(log_opts.instrument))
        sinks += make_trackers(log_opts, run_dir, f"{manifest.name}/{tgt.name}/{rid}", {"manifest": manifest.name})
        recorder = RunRecorder(run_dir, sinks=sinks, on_event=on_event)
    parallel.barrier()  # the run directory exists before any rank uses it
    try:
        with StopSignals() as stop:
            recorder.event("target_started", None, target=tgt.name, run_id=rid, run_dir=str(run_dir), resumed=resuming)
            if changes:
                recorder.event("manifest_changed", None, changes=changes)
            from caramba.engine.train.target import _manifest_dir, train_target
            from caramba.engine.verify.hooks import PostRun

            post = PostRun(manifest, tgt, run_dir, workspace_root=ws.root, manifest_dir=_manifest_dir(manifest))
            state, results = train_target(manifest, tgt, run_dir, recorder, device=device, workspace=ws,
                                          resuming=resuming, should_stop=stop, parallel=parallel,
                                          post=post if parallel.is_main else None)
            artifacts: list[Path] = []
            if state == "completed" and parallel.is_main:
                from caramba.engine.artifacts import write_artifacts

                artifacts = write_artifacts(run_dir, tgt, results, recorder)
                artifacts += post.finish(recorder, artifacts)  # benchmarks, verdicts, artifacts_index.json
            recorder.event("target_finished", None, state=state)
            if info is not None:
                info.set_state(state)
            return RunResult(run_dir, rid, tgt.name, state, results, artifacts)
    except KeyboardInterrupt:
        recorder.event("error", None, message="interrupted")
        recorder.event("target_finished", None, state="cancelled")
        if info is not None:
            info.set_state("cancelled")
        raise
    except BaseException as e:
        message = e.render() if isinstance(e, CarambaError) else f"{type(e).__name__}: {e}"
        recorder.event("error", None, message=message)
        recorder.event("target_finished", None, state="failed")
        if info is not None:
            info.set_state("failed")
        raise
    finally:
        recorder.close()
