"""Start a run from saved weights: ``runs[].checkpoint`` and ``train.peft`` set-up.

``runs[].checkpoint`` names the weights a run starts from:

* ``'<target>/<run id>'`` — the final (newest) checkpoint of that run in the newest
  *completed* run of another target of the same manifest
  (``runs/<manifest>/<target>/<run>/checkpoints/<run id>/latest``); this is how a
  manifest pretrains in one target and finetunes in the next;
* a path to a checkpoint folder (holding ``model.safetensors``) or to a
  ``.safetensors`` file, relative to the manifest's folder or the workspace.

Only the model weights are loaded (strictly: every tensor must fit); the optimizer,
schedule and data order start fresh. :func:`prepare_run_model` is what the target loop
calls before each run: load the start weights, then wrap LoRA adapters when the run's
``train.peft`` asks for them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_model
from torch import nn

from caramba.engine.errors import CarambaError
from caramba.engine.layers.lora import LoRALinear
from caramba.engine.train.checkpoint import latest_checkpoint
from caramba.engine.train.peft import apply_peft, peft_summary


def _completed_runs(target_folder: Path) -> list[Path]:
    runs = []
    for d in target_folder.iterdir() if target_folder.is_dir() else []:
        info = d / "run.json"
        if info.is_file():
            meta = json.loads(info.read_text())
            if meta.get("state") == "completed":
                runs.append((str(meta.get("created", "")), d.name, d))
    return [d for *_, d in sorted(runs)]


def resolve_start_weights(spec: str, *, run_dir: Path, manifest_dir: Path | None, workspace_root: Path,
                          target_names: list[str], manifest_file: str | None = None) -> Path:
    """The ``model.safetensors`` file that ``runs[].checkpoint: spec`` names."""
    head, sep, run_id = spec.partition("/")
    if sep and head in target_names and "/" not in run_id:
        folder = run_dir.parent.parent / head  # runs/<manifest>/<target>
        done = _completed_runs(folder)
        if not done:
            raise CarambaError(f"checkpoint '{spec}': target '{head}' has no completed run under {folder}",
                               fix=f"run it first: caramba run {manifest_file or '<manifest>'} --target {head}")
        latest = latest_checkpoint(done[-1] / "checkpoints" / run_id)
        if latest is None:
            raise CarambaError(f"checkpoint '{spec}': run {done[-1].name} of target '{head}' has no checkpoints "
                               f"for run id '{run_id}'", fix=f"use one of the runs[].id of target '{head}'")
        return latest / "model.safetensors"
    p = Path(spec).expanduser()
    candidates = [p] if p.is_absolute() else [*([manifest_dir / p] if manifest_dir else []), workspace_root / p]
    for c in candidates:
        if c.is_dir() and (c / "model.safetensors").is_file():
            return c / "model.safetensors"
        if c.is_file() and c.suffix == ".safetensors":
            return c
    raise CarambaError(f"checkpoint '{spec}' not found (tried {', '.join(str(c) for c in candidates)})",
                       fix="give '<target>/<run id>' of an earlier target of this manifest, or a checkpoint folder")


def check_start_weights(manifest: Any, tgt: Any, target_folder: Path, *, workspace_root: Path,
                        manifest_dir: Path | None) -> None:
    """Resolve every ``runs[].checkpoint`` of ``tgt`` before its run directory is made, so a
    missing pretrain run is a located manifest error (file:line) and leaves no failed run."""
    from caramba.engine.errors import ManifestError

    issues = []
    names = [t.name for t in manifest.targets]
    for j, run in enumerate(tgt.runs):
        spec = getattr(run, "checkpoint", None)
        if not spec:
            continue
        try:
            resolve_start_weights(spec, run_dir=target_folder / "_", manifest_dir=manifest_dir,
                                  workspace_root=workspace_root, target_names=names,
                                  manifest_file=manifest.source_file)
        except CarambaError as e:
            issues.append(manifest.issue(("targets", manifest.targets.index(tgt), "runs", j, "checkpoint"),
                                         e.message, fix=e.fix))
    if issues:
        raise ManifestError(issues)


def load_start_weights(system: nn.Module, path: Path) -> None:
    missing, unexpected = load_model(system, str(path), strict=False)
    if missing or unexpected:
        raise CarambaError(f"start weights {path} do not fit the model (missing: {sorted(missing)[:5]}, "
                           f"unexpected: {sorted(unexpected)[:5]})",
                           fix="the run's system must have the same architecture as the one that saved them")


def prepare_run_model(system: nn.Module, run: Any, *, run_dir: Path, manifest_dir: Path | None,
                      workspace_root: Path, target_names: list[str], recorder: Any) -> None:
    """Apply ``run.checkpoint`` and ``run.train.peft`` to ``system`` (in place)."""
    if getattr(run, "checkpoint", None):
        path = resolve_start_weights(run.checkpoint, run_dir=run_dir, manifest_dir=manifest_dir,
                                     workspace_root=workspace_root, target_names=target_names)
        load_start_weights(system, path)
        recorder.event("weights_loaded", run.id, path=str(path))
    peft = getattr(getattr(run, "train", None), "peft", None)
    if peft is not None and peft.enabled and not any(isinstance(m, LoRALinear) for m in system.modules()):
        wrapped = apply_peft(system, peft)
        recorder.event("peft_applied", run.id, modules=wrapped, **peft_summary(system))
