"""Helpers shared by the kernel tests (device choice, tolerances, relative error)."""

from __future__ import annotations

import torch

#: CUDA when present; otherwise CPU with the Triton interpreter (tests/conftest.py sets it).
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
ON_GPU = DEVICE == "cuda"

#: (dtype, tolerance on ||out - ref|| / ||ref||) grid for forward/backward comparisons.
DTYPES = [(torch.float32, 1e-5), (torch.bfloat16, 1e-2), (torch.float16, 2e-3)]


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    """||out - ref|| / ||ref|| in float64; NaN anywhere fails (returns inf)."""
    o, r = out.detach().double(), ref.detach().double()
    if not torch.isfinite(o).all():
        return float("inf")
    return float((o - r).norm() / r.norm().clamp_min(1e-30))
