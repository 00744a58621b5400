"""Rotary position embedding (rotate-half layout, optional partial rotary dim).

For each row x (length D) at position t, with R = 2 * cos.shape[-1] <= D:

    y[i]       = x[i] * cos[t, i] - x[R/2 + i] * sin[t, i]      for i < R/2
    y[R/2 + i] = x[i] * sin[t, i] + x[R/2 + i] * cos[t, i]
    y[j]       = x[j]                                             for j >= R

The backward is the same rotation by -angle (rotations are orthogonal), so one kernel
serves both directions (``SIGN`` = +1 / -1). llama3/NTK scaling only changes the tables,
which the caller builds. x may be any strided (B, H, T, D) view with a contiguous last
dim (e.g. a (B, T, H, D) projection transposed); the output is contiguous. One program
handles a (BLOCK_T, D) tile of one (batch, head).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from caramba.kernels.checks import SignatureCache, check_dtype, check_last_dim_contiguous, check_same_device, check_shape, fail
from caramba.kernels.launch import compute_dtype


@triton.jit
def _rope_kernel(
    X,  # (B, H, T, D) input, strides sb/sh/st, last dim contiguous
    Y,  # (B, H, T, D) output, contiguous
    Cos,  # (T, R2) cosine table, contiguous
    Sin,  # (T, R2) sine table, contiguous
    sb, sh, st, H, T, D, R2,
    SIGN: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_P: tl.constexpr,
    COMPUTE: tl.constexpr,
):
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    t = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    r = tl.arange(0, BLOCK_R)
    tm = t < T
    m = tm[:, None] & (r < R2)[None, :]
    xin = X + b * sb + h * sh + t[:, None].to(tl.int64) * st
    yout = Y + (b * H + h) * T * D + t[:, None].to(tl.int64) * D
    c = tl.load(Cos + t[:, None] * R2 + r[None, :], mask=m, other=0.0).to(COMPUTE)
    s = tl.load(Sin + t[:, None] * R2 + r[None, :], mask=m, other=0.0).to(COMPUTE) * SIGN
    x1 = tl.load(xin + r[None, :], mask=m, other=0.0).to(COMPUTE)
    x2 = tl.load(xin + R2 + r[None, :], mask=m, other=0.0).to(COMPUTE)
    tl.store(yout + r[None, :], (x1 * c - x2 * s).to(Y.dtype.element_ty), mask=m)
    tl.store(yout + R2 + r[None, :], (x1 * s + x2 * c).to(Y.dtype.element_ty), mask=m)
    if BLOCK_P > 0:  # pass-through tail of a partial rotary dim
        p = tl.arange(0, BLOCK_P)
        pm = tm[:, None] & (p < D - 2 * R2)[None, :]
        tail = tl.load(xin + 2 * R2 + p[None, :], mask=pm, other=0.0)
        tl.store(yout + 2 * R2 + p[None, :], tail.to(Y.dtype.element_ty), mask=pm)


_plans = SignatureCache()


def _plan(B: int, H: int, T: int, D: int, R2: int, dtype: torch.dtype) -> tuple:
    """``(grid, BLOCK_T, BLOCK_R, BLOCK_P, COMPUTE)`` for one shape."""
    block_r = triton.next_power_of_2(R2)
    block_p = triton.next_power_of_2(D - 2 * R2) if D > 2 * R2 else 0
    block_t = max(1, min(triton.next_power_of_2(T), 4096 // max(block_r, 16)))
    return (triton.cdiv(T, block_t), B * H), block_t, block_r, block_p, compute_dtype(dtype)


def rope_launch(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, sign: float) -> torch.Tensor:
    """Rotate ``x`` (checked by the caller) by +angle (``sign`` 1) or -angle (-1); contiguous result."""
    B, H, T, D = x.shape
    R2 = cos.shape[-1]
    y = torch.empty((B, H, T, D), dtype=x.dtype, device=x.device)
    if y.numel() == 0:
        return y
    grid, block_t, block_r, block_p, cdt = _plans.get((B, H, T, D, R2, x.dtype), lambda: _plan(B, H, T, D, R2, x.dtype))
    sb, sh, st, _ = x.stride()
    _rope_kernel[grid](x, y, cos, sin, sb, sh, st, H, T, D, R2, SIGN=sign,
                       BLOCK_T=block_t, BLOCK_R=block_r, BLOCK_P=block_p, COMPUTE=cdt, num_warps=4)
    return y


def check_inputs(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> None:
    op = "apply_rope"
    check_same_device(op, x=x, cos=cos, sin=sin)
    check_dtype(op, "x", x)
    check_shape(op, "x", x, (None, None, None, None), "(B, H, T, D)")
    T, D = x.shape[2], x.shape[3]
    check_shape(op, "cos", cos, (T, None), "(T, R/2)")
    check_shape(op, "sin", sin, (T, cos.shape[1]), "(T, R/2)")
    if 2 * cos.shape[1] > D:
        raise fail(op, f"rotary dim R = 2 * {cos.shape[1]} exceeds head dim D = {D}",
                   "build cos/sin with R/2 <= D/2 columns")
    check_last_dim_contiguous(op, "x", x)


_checked = SignatureCache()


def check_cached(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> None:
    """:func:`check_inputs` once per signature (shapes, dtypes, devices, x's last-dim stride)."""
    _checked.get((x.shape, x.dtype, x.device, x.stride(-1) if x.dim() else 1, cos.shape, sin.shape, cos.device,
                  sin.device), lambda: check_inputs(x, cos, sin))


class RoPEFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, cos, sin):  # type: ignore[override]
        check_cached(x, cos, sin)
        if cos.requires_grad or sin.requires_grad:
            raise fail("apply_rope", "cos/sin require grad; the kernel gives the tables no gradient",
                       "build the tables under torch.no_grad() (they are fixed buffers)")
        cos, sin = cos.contiguous(), sin.contiguous()
        ctx.save_for_backward(cos, sin)
        return rope_launch(x, cos, sin, 1.0)

    @staticmethod
    def backward(ctx, dy):  # type: ignore[override]
        cos, sin = ctx.saved_tensors
        dy = dy if dy.stride(-1) == 1 else dy.contiguous()
        return rope_launch(dy, cos, sin, -1.0), None, None


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding through the Triton kernel. x: (B, H, T, D); cos, sin: (T, R/2)."""
    return RoPEFunction.apply(x, cos, sin)
