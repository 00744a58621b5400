"""Optimizers chosen by platform. The trainer calls :func:`make_adamw`; it never builds
an optimizer kernel itself.

The dispatch table's ``adamw`` row decides: parameters on CUDA with Triton -> the fused
multi-tensor :class:`~caramba.kernels.adamw.FusedAdamW`; anything else (CPU, MPS,
``CARAMBA_KERNELS=reference``) -> ``torch.optim.AdamW``. Both keep the same state-dict
layout, so a checkpoint written by one resumes with the other.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from caramba.kernels.dispatch import route


def _device_type(params: list) -> str:
    tensors = [p for g in params for p in g["params"]] if params and isinstance(params[0], dict) else params
    kinds = {t.device.type for t in tensors}
    return kinds.pop() if len(kinds) == 1 else "mixed"


def make_adamw(params: Iterable[torch.nn.Parameter] | Iterable[dict], *, lr: float, betas: tuple[float, float] = (0.9, 0.95),
               eps: float = 1e-8, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """AdamW for this platform: fused Triton step on CUDA, ``torch.optim.AdamW`` elsewhere."""
    params = list(params)
    for g in params:
        if isinstance(g, dict):
            g["params"] = list(g["params"])
    return route("adamw", _device_type(params))(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
