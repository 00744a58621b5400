"""Which model a benchmark's ``models: [...]`` entry means.

* ``student`` — this target's system after its runs;
* ``teacher`` — the upcycle teacher of this target (``trainer.upcycle``);
* another target's name — that target's system with the final weights of its newest
  completed run (``runs/<manifest>/<target>/<run>/checkpoints/<last run id>/latest``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from caramba.engine.errors import CarambaError


def resolve_models(names: set[str], *, manifest: Any, target: Any, student: nn.Module, teacher: nn.Module | None,
                   run_dir: Path, workspace_root: Path, manifest_dir: Path | None) -> dict[str, nn.Module]:
    from caramba.engine.systems.build import build_system
    from caramba.engine.train.init_weights import load_start_weights, resolve_start_weights

    device = next(student.parameters()).device
    out: dict[str, nn.Module] = {}
    targets = {t.name: t for t in manifest.targets}
    for name in sorted(names):
        if name == "student":
            out[name] = student
        elif name == "teacher":
            if teacher is None:
                raise CarambaError(f"target '{target.name}': a benchmark measures 'teacher' but the target has no "
                                   "teacher", fix="use trainer.upcycle with train.teacher_ckpt, or name the teacher's "
                                   "target instead")
            out[name] = teacher
        elif name in targets and getattr(targets[name], "runs", None):
            other = targets[name]
            path = resolve_start_weights(f"{name}/{other.runs[-1].id}", run_dir=run_dir, manifest_dir=manifest_dir,
                                         workspace_root=workspace_root, target_names=list(targets))
            model = build_system(other.system, device="cpu",
                                 allow_python_impl=bool(manifest.defaults.runtime.allow_python_impl))
            load_start_weights(model, path)
            out[name] = model.to(device).eval()
        else:
            raise CarambaError(f"benchmark model '{name}' is not student, teacher or a target of this manifest",
                               fix=f"use one of student, teacher, {', '.join(targets)}")
    return out


def dtype_of(model: nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype
