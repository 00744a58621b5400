"""``apples_to_apples: true``: every run of the manifest must be comparable.

Enforced before anything trains (:func:`enforce_apples_to_apples`, called by the runner):

* refused, each named by its YAML path: ``train.compile_model: true`` (Inductor
  autotunes kernels, so numerics depend on timing), ``train.distributed`` other than
  ``none`` (collective reduction order varies). ``train.num_workers > 0`` is allowed:
  worker processes read exactly the in-process batch sequence (``engine/data/workers.py``);
* applied: fixed seeds (every run has one; runs already seed every RNG from it),
  ``torch.use_deterministic_algorithms(True)``, cuDNN benchmark off, and
  ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (deterministic cuBLAS). caramba's Triton kernels
  use fixed tile sizes (no autotuning), so they are allowed.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from caramba.engine.errors import ManifestError


def _offending(train: Any) -> list[tuple[str, str, str, str]]:
    """(field, found, why, fix) for every comparability-breaking setting of one run."""
    out = []
    if train.compile_model:
        out.append(("compile_model", "true", "torch.compile autotunes kernels (numerics depend on timing)",
                    "set compile_model: false"))
    if train.distributed != "none":
        out.append(("distributed", train.distributed, "collective reductions change summation order",
                    "set distributed: none"))
    return out


def enforce_apples_to_apples(manifest: Any) -> bool:
    """Refuse non-repeatable settings and switch on determinism; returns whether active."""
    if not manifest.defaults.runtime.apples_to_apples:
        return False
    issues = []
    for ti, tgt in enumerate(manifest.targets):
        for ri, run in enumerate(getattr(tgt, "runs", None) or []):
            for name, found, why, fix in _offending(run.train):
                issues.append(manifest.issue(("targets", ti, "runs", ri, "train", name),
                                             f"apples_to_apples: true refuses train.{name}: {why}",
                                             expected="a repeatable setting", found=found, fix=fix))
    if issues:
        raise ManifestError(issues)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    return True
