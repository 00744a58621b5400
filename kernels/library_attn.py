"""Flash attention (plain and DBA) and quantised-KV decode as ``torch.library`` custom ops.

Same pattern as :mod:`caramba.kernels.library` (read its docstring): eager calls run the
``torch.autograd.Function`` in :mod:`caramba.kernels.flash`; while ``torch.compile`` traces,
calls go to ``torch.ops.caramba.flash_fwd`` / ``flash_bwd`` (opaque to Inductor, which would
otherwise try to re-compile the flash kernel's Triton source) and
``torch.ops.caramba.decode_attention_quantized`` (inference only: no autograd).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.library import custom_op

from caramba.kernels import flash, flash_bwd, quant_decode
from caramba.kernels.flash_check import check_attention

_compiling = torch.compiler.is_compiling


@custom_op("caramba::flash_fwd", mutates_args=())
def flash_fwd(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, q2: torch.Tensor | None, k2: torch.Tensor | None,
              causal: bool, scale: float, window: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(o (B, H, T, Dv), lse (B, H, T) fp32 base 2)``; q2/k2 are DBA's geometric parts."""
    return flash.attention_forward(q, k, v, q2, k2, causal, scale, window)


@flash_fwd.register_fake
def _(q, k, v, q2, k2, causal, scale, window):
    check_attention("attention" if q2 is None else "decoupled_attention", q, k, v, q2, k2, window)
    B, H, T, _ = q.shape
    stat = torch.float64 if q.dtype == torch.float64 else torch.float32
    return q.new_empty((B, H, T, v.shape[3])), q.new_empty((B, H, T), dtype=stat)


@custom_op("caramba::flash_bwd", mutates_args=())
def flash_bwd_op(do: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, q2: torch.Tensor | None,
                 k2: torch.Tensor | None, o: torch.Tensor, lse: torch.Tensor, causal: bool, scale: float,
                 window: int | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(dq, dk, dv, dq2, dk2)``; dq2/dk2 are empty without DBA parts."""
    dq, dk, dv, dq2, dk2 = flash_bwd.attention_backward(do, q, k, v, q2, k2, o, lse, causal, scale * flash.LOG2E,
                                                        scale, window)
    return dq, dk, dv, (dq2 if dq2 is not None else q.new_empty(0)), (dk2 if dk2 is not None else q.new_empty(0))


@flash_bwd_op.register_fake
def _(do, q, k, v, q2, k2, o, lse, causal, scale, window):
    geo = q2 is not None
    return (q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape),
            q.new_empty(q2.shape) if geo else q.new_empty(0),
            q.new_empty(k2.shape) if geo else q.new_empty(0))


def _flash_setup(ctx: Any, inputs: tuple, output: tuple) -> None:
    q, k, v, q2, k2, causal, scale, window = inputs
    o, lse = output
    ctx.mark_non_differentiable(lse)
    ctx.save_for_backward(q, k, v, q2, k2, o, lse)
    ctx.causal, ctx.scale, ctx.window = causal, scale, window


def _flash_backward(ctx: Any, do: torch.Tensor, _dlse: Any) -> tuple:
    q, k, v, q2, k2, o, lse = ctx.saved_tensors
    dq, dk, dv, dq2, dk2 = torch.ops.caramba.flash_bwd(do, q, k, v, q2, k2, o, lse, ctx.causal, ctx.scale,
                                                       ctx.window)
    geo = q2 is not None
    return dq, dk, dv, (dq2 if geo else None), (dk2 if geo else None), None, None, None


flash_fwd.register_autograd(_flash_backward, setup_context=_flash_setup)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool, scale: float | None = None,
              window: int | None = None) -> torch.Tensor:
    """Flash attention (Triton); contract of :func:`caramba.kernels.ops.attention` (no dropout)."""
    if _compiling():
        scale = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
        return torch.ops.caramba.flash_fwd(q, k, v, None, None, causal, scale, window)[0]
    return flash.attention(q, k, v, causal=causal, scale=scale, window=window)


def decoupled_attention(q_sem: torch.Tensor, k_sem: torch.Tensor, q_geo: torch.Tensor, k_geo: torch.Tensor,
                        v: torch.Tensor, *, causal: bool, scale: float | None = None,
                        window: int | None = None) -> torch.Tensor:
    """DBA attention (Triton); contract of :func:`caramba.kernels.ops.decoupled_attention`."""
    if _compiling():
        scale = scale if scale is not None else 1.0 / math.sqrt(q_sem.shape[-1] + q_geo.shape[-1])
        return torch.ops.caramba.flash_fwd(q_sem, k_sem, v, q_geo, k_geo, causal, scale, window)[0]
    return flash.decoupled_attention(q_sem, k_sem, q_geo, k_geo, v, causal=causal, scale=scale, window=window)


@custom_op("caramba::decode_attention_quantized", mutates_args=())
def decode_op(q: torch.Tensor, k_data: torch.Tensor, k_scales: torch.Tensor, v_data: torch.Tensor,
              v_scales: torch.Tensor, fmt: str, scale: float | None) -> torch.Tensor:
    return quant_decode.decode_attention_quantized(q, k_data, k_scales, v_data, v_scales, fmt, scale=scale)


@decode_op.register_fake
def _(q, k_data, k_scales, v_data, v_scales, fmt, scale):
    return q.new_empty(q.shape)


def decode_attention_quantized(q: torch.Tensor, k_data: torch.Tensor, k_scales: torch.Tensor,
                               v_data: torch.Tensor, v_scales: torch.Tensor, fmt: str, *,
                               scale: float | None = None) -> torch.Tensor:
    """Decode over a q8_0/q4_0 cache (Triton); contract of :func:`caramba.kernels.ops.decode_attention_quantized`."""
    if _compiling():
        return torch.ops.caramba.decode_attention_quantized(q, k_data, k_scales, v_data, v_scales, fmt, scale)
    return quant_decode.decode_attention_quantized(q, k_data, k_scales, v_data, v_scales, fmt, scale=scale)
