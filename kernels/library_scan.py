"""The selective scan as a ``torch.library`` custom op (same pattern as :mod:`caramba.kernels.library`).

Eager calls run :class:`caramba.kernels.scan.SelectiveScanFunction`; while ``torch.compile``
traces, calls go to ``torch.ops.caramba.scan_fwd`` / ``scan_bwd``, opaque to Inductor. The
forward op also returns the per-chunk state checkpoints the backward needs (not differentiable).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.library import custom_op

from caramba.kernels import scan
from caramba.kernels.scan_bwd import scan_backward

_compiling = torch.compiler.is_compiling
Opt = torch.Tensor | None


@custom_op("caramba::scan_fwd", mutates_args=())
def scan_fwd(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, D: Opt,
             z: Opt, bias: Opt, state: Opt, softplus: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(out (Bt, L, Dm), final state (Bt, Dm, N), checkpoints (Bt, chunks, Dm, N))``."""
    scan.check_inputs(u, delta, A, B, C, D, z, bias, state)
    return scan.scan_forward(u, delta, A, B, C, D, z, bias, softplus, state)


@scan_fwd.register_fake
def _(u, delta, A, B, C, D, z, bias, state, softplus):
    scan.check_inputs(u, delta, A, B, C, D, z, bias, state)
    Bt, L, Dm = u.shape
    N = A.shape[1]
    sdt = torch.float64 if u.dtype == torch.float64 else torch.float32
    chunks = (L + scan.CHUNK - 1) // scan.CHUNK
    return (u.new_empty((Bt, L, Dm)), u.new_empty((Bt, Dm, N), dtype=sdt),
            u.new_empty((Bt, chunks, Dm, N), dtype=sdt))


@custom_op("caramba::scan_bwd", mutates_args=())
def scan_bwd(dy: torch.Tensor, dh_last: torch.Tensor, u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor,
             B: torch.Tensor, C: torch.Tensor, D: Opt, z: Opt, bias: Opt, softplus: bool,
             ckpt: torch.Tensor) -> list[torch.Tensor]:
    """Gradients for (u, delta, A, B, C, D, z, bias, state); empty where the input is absent."""
    grads = scan_backward(dy, dh_last, u, delta, A, B, C, D, z, bias, softplus, ckpt)
    return [g if g is not None else u.new_empty(0) for g in grads]


@scan_bwd.register_fake
def _(dy, dh_last, u, delta, A, B, C, D, z, bias, softplus, ckpt):
    sdt = torch.float64 if u.dtype == torch.float64 else torch.float32
    like = lambda t: t.new_empty(t.shape) if t is not None else u.new_empty(0)  # noqa: E731
    return [like(u), like(delta), like(A), like(B), like(C), like(D), like(z), like(bias),
            u.new_empty((u.shape[0], u.shape[2], A.shape[1]), dtype=sdt)]


def _setup(ctx: Any, inputs: tuple, output: tuple) -> None:
    u, delta, A, B, C, D, z, bias, state, softplus = inputs
    ctx.mark_non_differentiable(output[2])
    ctx.save_for_backward(u, delta, A, B, C, D, z, bias, output[2])
    ctx.softplus, ctx.has_state = softplus, state is not None


def _backward(ctx: Any, dy: torch.Tensor, dh_last: torch.Tensor, _dckpt: Any) -> tuple:
    u, delta, A, B, C, D, z, bias, ckpt = ctx.saved_tensors
    g = torch.ops.caramba.scan_bwd(dy, dh_last, u, delta, A, B, C, D, z, bias, ctx.softplus, ckpt)
    opt = lambda i, t: g[i] if t is not None else None  # noqa: E731
    return (g[0], g[1], g[2], g[3], g[4], opt(5, D), opt(6, z), opt(7, bias), g[8] if ctx.has_state else None,
            None)


scan_fwd.register_autograd(_backward, setup_context=_setup)


def selective_scan(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
    D: torch.Tensor | None = None, *, z: torch.Tensor | None = None, delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False, state: torch.Tensor | None = None, return_state: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Triton selective scan; contract of :func:`caramba.kernels.ops.selective_scan`."""
    if not _compiling():
        return scan.selective_scan(u, delta, A, B, C, D, z=z, delta_bias=delta_bias, delta_softplus=delta_softplus,
                                   state=state, return_state=return_state)
    y, h_last, _ = torch.ops.caramba.scan_fwd(u, delta, A, B, C, D, z, delta_bias, state, delta_softplus)
    return (y, h_last) if return_state else y
