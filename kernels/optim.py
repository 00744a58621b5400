"""Optimizers chosen by platform. The trainer calls :func:`make_adamw`; it never builds
an optimizer kernel itself."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def make_adamw(params: Iterable[torch.nn.Parameter] | Iterable[dict], *, lr: float, betas: tuple[float, float] = (0.9, 0.95),
               eps: float = 1e-8, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """AdamW for this platform (reference implementation: ``torch.optim.AdamW``)."""
    return torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
