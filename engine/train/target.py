"""Train the runs of one experiment target in order (the runner's inner loop).

For each ``runs[]`` entry: resolve its options, seed every RNG with the run's seed, build
(or reuse) the data, pick up the run's checkpoint when resuming, and hand a
:class:`~caramba.engine.train.trainer.TrainJob` to the target's trainer. The system is
built once, before the first run, right after seeding with the first run's seed, so the
initial weights are a function of that seed.

Resuming: a run whose final checkpoint exists is finished — its weights are loaded and
its metrics come from the checkpoint; the first unfinished run continues from its
newest checkpoint (or from the start), after ``metrics.jsonl`` rows logged past that
checkpoint are dropped so the file holds one continuous curve.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from caramba.engine.data.base import DataContext, DataSplits
from caramba.engine.data.registry import DATASETS
from caramba.engine.data.tokenizer import TokenizerError
from caramba.engine.errors import ManifestError
from caramba.engine.train.checkpoint import latest_checkpoint, load_checkpoint, seed_everything
from caramba.engine.train.device import resolve_device
from caramba.engine.train.distributed import Parallel
from caramba.engine.train.init_weights import prepare_run_model
from caramba.engine.train.options import resolve_train_options
from caramba.engine.train.recorder import RunRecorder
from caramba.engine.train.registry import OBJECTIVES, TASKS, TRAINERS
from caramba.engine.train.trainer import TrainJob
from caramba.workspace import Workspace


def _component(registry: Any, spec: Any) -> Any:
    return registry.get(spec.ref)(spec.config)


def _manifest_dir(manifest: Any) -> Path | None:
    src = manifest.source_file
    return Path(src).resolve().parent if src and Path(src).exists() else None


def build_data(manifest: Any, tgt: Any, ctx: DataContext) -> DataSplits:
    """The target's datasets; a tokenizer that cannot be loaded is reported where it was
    configured (file, line, YAML path) — the dataset's config or ``defaults.data``."""
    try:
        return _component(DATASETS, tgt.data).build(ctx)
    except TokenizerError as e:
        path = (("defaults", "data", "tokenizer") if e.origin == "defaults" else
                ("targets", manifest.targets.index(tgt), "data", "config", "tokenizer"))
        raise ManifestError([manifest.issue(path, e.message, fix=e.fix)]) from None


def train_target(manifest: Any, tgt: Any, run_dir: Path, recorder: RunRecorder, *, device: str | None,
                 workspace: Workspace, resuming: bool, should_stop: Callable[[], bool],
                 parallel: Parallel | None = None, post: Any = None) -> tuple[str, dict[str, dict[str, float]]]:
    """Returns ``(state, {run id: final metrics})`` with state ``completed`` or ``cancelled``.

    ``post`` (:class:`caramba.engine.verify.hooks.PostRun`) is told about every finished
    run (its ``verify`` gate runs there)."""
    from caramba.engine.systems.build import build_system

    parallel = parallel or Parallel()
    task = _component(TASKS, tgt.task)
    objective = _component(OBJECTIVES, tgt.objective)
    trainer = _component(TRAINERS, tgt.trainer)
    allow = bool(manifest.defaults.runtime.allow_python_impl)
    seed_everything(tgt.runs[0].seed)
    system = build_system(tgt.system, device="cpu", allow_python_impl=allow)
    data_cache: dict[tuple[int, int | None], DataSplits] = {}
    results: dict[str, dict[str, float]] = {}
    order = [r.id for r in tgt.runs]
    for index, run in enumerate(tgt.runs):
        opts = resolve_train_options(run.train, runtime=manifest.defaults.runtime,
                                     logging=manifest.defaults.logging, run_id=run.id)
        dev = parallel.place(resolve_device(device or opts.device))
        # start weights (runs[].checkpoint) and LoRA wrapping (train.peft), before any resume load
        prepare_run_model(system, run, run_dir=run_dir, manifest_dir=_manifest_dir(manifest),
                          workspace_root=workspace.root, target_names=[t.name for t in manifest.targets],
                          recorder=recorder)
        ckpt_dir = run_dir / "checkpoints" / run.id
        state = None
        if resuming:
            latest = latest_checkpoint(ckpt_dir)
            if latest is not None:
                state = load_checkpoint(latest, system)
                if state.get("final_metrics") is not None and int(state["step"]) >= run.steps:
                    results[run.id] = state["final_metrics"]
                    recorder.event("run_finished", run.id, metrics=results[run.id], skipped=True)
                    if post is not None:
                        post.after_run(run, system, trainer, None, recorder, verify=False)
                    continue
            start = int(state["step"]) if state is not None else 0
            later = set(order[index + 1:])
            recorder.truncate_metrics(lambda r, start=start, rid=run.id, later=later:
                             r.get("run") not in later and not (r.get("run") == rid and r.get("step", 0) > start))
            resuming = False  # every later run starts fresh
        if state is None:
            seed_everything(run.seed)
        key = (run.seed, opts.block_size)
        if key not in data_cache:
            ctx = DataContext(workspace, _manifest_dir(manifest), seed=run.seed, block_size=opts.block_size,
                              val_frac=manifest.defaults.data.val_frac, tokenizer=manifest.defaults.data.tokenizer)
            data_cache[key] = build_data(manifest, tgt, ctx)
        job = TrainJob(run_id=run.id, system=system, objective=objective, task=task, data=data_cache[key],
                       opts=opts, steps=run.steps, seed=run.seed, device=dev, checkpoint_dir=ckpt_dir,
                       recorder=recorder, resume_state=state, should_stop=should_stop,
                       parallel=parallel)
        outcome = trainer.train(job)
        if outcome.state != "completed":
            return outcome.state, results
        results[run.id] = outcome.metrics
        recorder.event("run_finished", run.id, metrics=outcome.metrics)
        system = job.system
        if post is not None:
            post.after_run(run, system, trainer, data_cache[key], recorder)
    return "completed", results

