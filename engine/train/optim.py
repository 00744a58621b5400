"""Optimizer and learning-rate schedule for ``trainer.standard``.

Weight decay applies to matrices only (``p.dim() >= 2``: linear and embedding weights);
biases and norm gains are not decayed — decaying a norm's gain towards zero fights the
normalisation. AdamW comes from :func:`caramba.kernels.optim.make_adamw` (fused Triton
step on CUDA, ``torch.optim.AdamW`` on CPU).

The schedule is a multiplier on ``lr`` as a function of the optimizer step ``s``:
linear warm-up from ``1/warmup`` to 1 over ``warmup_steps``, then
``constant`` (1), ``linear`` (1 → ``min_lr_ratio`` at the last step) or ``cosine``
(half-cosine 1 → ``min_lr_ratio``); ``none`` is 1 throughout, warm-up included.
"""

from __future__ import annotations

import math

import torch

from caramba.engine.train.options import TrainOptions
from caramba.kernels.optim import make_adamw


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: decayed matrices, undecayed vectors/scalars (each parameter once)."""
    seen: set[int] = set()
    decay, no_decay = [], []
    for p in model.parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def make_optimizer(model: torch.nn.Module, opts: TrainOptions) -> torch.optim.Optimizer:
    groups = param_groups(model, opts.weight_decay)
    if opts.optimizer == "adamw":
        return make_adamw(groups, lr=opts.lr, betas=opts.betas, eps=opts.eps, weight_decay=opts.weight_decay)
    return torch.optim.SGD(groups, lr=opts.lr, momentum=opts.momentum, weight_decay=opts.weight_decay)


def lr_multiplier(step: int, total: int, opts: TrainOptions) -> float:
    """The factor on ``opts.lr`` at optimizer step ``step`` (0-based) of ``total``."""
    if opts.scheduler == "none":
        return 1.0
    if opts.warmup_steps and step < opts.warmup_steps:
        return (step + 1) / opts.warmup_steps
    if opts.scheduler == "constant":
        return 1.0
    span = max(1, total - opts.warmup_steps - 1)
    progress = min(1.0, (step - opts.warmup_steps) / span)
    floor = opts.min_lr_ratio
    if opts.scheduler == "linear":
        return 1.0 - (1.0 - floor) * progress
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(optimizer: torch.optim.Optimizer, total: int, opts: TrainOptions) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_multiplier(s, total, opts))
