"""Cross-entropy and linear (LM-head) cross-entropy as ``torch.library`` custom ops.

Same pattern as :mod:`caramba.kernels.library` (read its docstring): eager calls run the
``torch.autograd.Function`` in :mod:`caramba.kernels.cross_entropy`; while ``torch.compile``
traces, calls go to ``torch.ops.caramba.ce_fwd`` / ``ce_bwd`` and ``linear_ce_fwd`` (whose
forward already produces both gradients for dloss = 1; its backward only scales them).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.library import custom_op

from caramba.kernels import cross_entropy as ce

_compiling = torch.compiler.is_compiling


@custom_op("caramba::ce_fwd", mutates_args=())
def ce_fwd(logits: torch.Tensor, targets: torch.Tensor,
           ignore_index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(mean loss (), lse (N,), n_valid (1,))``, all fp32."""
    return ce.ce_forward(logits, targets, ignore_index)


@ce_fwd.register_fake
def _(logits, targets, ignore_index):
    ce.check_inputs("cross_entropy", logits, targets, ignore_index)
    f32 = torch.float32
    return logits.new_empty((), dtype=f32), logits.new_empty(logits.shape[0], dtype=f32), logits.new_empty(1, dtype=f32)


@custom_op("caramba::ce_bwd", mutates_args=())
def ce_bwd(dloss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor, lse: torch.Tensor,
           n_valid: torch.Tensor, ignore_index: int) -> torch.Tensor:
    return ce.ce_backward(dloss, logits, targets, lse, n_valid, ignore_index)


@ce_bwd.register_fake
def _(dloss, logits, targets, lse, n_valid, ignore_index):
    return logits.new_empty(logits.shape)


def _ce_setup(ctx: Any, inputs: tuple, output: tuple) -> None:
    ctx.mark_non_differentiable(output[1], output[2])
    ctx.save_for_backward(inputs[0], inputs[1], output[1], output[2])
    ctx.ignore_index = inputs[2]


def _ce_backward(ctx: Any, dloss: torch.Tensor, _dlse: Any, _dn: Any) -> tuple:
    logits, targets, lse, n_valid = ctx.saved_tensors
    return torch.ops.caramba.ce_bwd(dloss, logits, targets, lse, n_valid, ctx.ignore_index), None, None


ce_fwd.register_autograd(_ce_backward, setup_context=_ce_setup)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Mean cross-entropy (Triton); contract of :func:`caramba.kernels.ops.cross_entropy`."""
    if _compiling():
        return torch.ops.caramba.ce_fwd(logits, targets, ignore_index)[0]
    return ce.cross_entropy(logits, targets, ignore_index)


@custom_op("caramba::linear_ce_fwd", mutates_args=())
def linear_ce_fwd(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, ignore_index: int,
                  chunk: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(loss (), d_hidden, d_weight)``; ``chunk`` 0 picks the row chunk automatically."""
    return ce.linear_ce_forward(hidden, weight, targets, ignore_index, chunk or None)


@linear_ce_fwd.register_fake
def _(hidden, weight, targets, ignore_index, chunk):
    return hidden.new_empty((), dtype=torch.float32), hidden.new_empty(hidden.shape), weight.new_empty(weight.shape)


def _lce_setup(ctx: Any, inputs: tuple, output: tuple) -> None:
    ctx.mark_non_differentiable(output[1], output[2])
    ctx.save_for_backward(output[1], output[2])


def _lce_backward(ctx: Any, dloss: torch.Tensor, _dh: Any, _dw: Any) -> tuple:
    d_hidden, d_weight = ctx.saved_tensors
    return d_hidden * dloss.to(d_hidden.dtype), d_weight * dloss.to(d_weight.dtype), None, None, None


linear_ce_fwd.register_autograd(_lce_backward, setup_context=_lce_setup)


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                         ignore_index: int = -100) -> torch.Tensor:
    """cross_entropy(hidden @ weight.T, targets) (Triton); contract of :func:`caramba.kernels.ops.linear_cross_entropy`."""
    if _compiling():
        return torch.ops.caramba.linear_ce_fwd(hidden, weight, targets, ignore_index, 0)[0]
    return ce.linear_cross_entropy(hidden, weight, targets, ignore_index)
