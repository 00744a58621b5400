"""Fused RMSNorm and LayerNorm: one Triton kernel forward, one backward.

Forward, per row of ``x (N, C)``: ``xhat = (x - mean) * rstd`` (RMSNorm: no mean),
``y = xhat * w + b``; ``mean`` and ``rstd`` are saved (fp32, 8 bytes/row) so the
backward reads x and dy once. Backward, per row: ``g = dy * w``,
``dx = rstd * (g - mean(g) - xhat * mean(g * xhat))`` (RMSNorm drops ``mean(g)``);
the weight/bias gradients ``sum_rows(dy * xhat)`` and ``sum_rows(dy)`` are reduced in
registers by a persistent grid (two programs per SM, each owning a contiguous slab of rows
that it walks in (ROWS, C) tiles) into a ``(programs, C)`` fp32 partial that one small
``sum(0)`` finishes.

Host side: the checks and launch parameters of a call are computed once per argument
signature (shapes, dtypes, devices) and remembered, so a training step pays a dict lookup,
the output allocations and the launch.

Everything is computed in fp32 (fp64 when the input is fp64, which is what
``torch.autograd.gradcheck`` uses under the interpreter).

    y = rms_norm(x, weight, eps=1e-6)        # autograd-aware, x (..., C) on CUDA
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from caramba.kernels.checks import SignatureCache, check_dtype, check_same_device, check_shape, fail
from caramba.kernels.launch import compute_dtype, num_programs


@triton.jit
def _norm_fwd_kernel(
    X,  # (N, C) input rows, last dim contiguous
    Y,  # (N, C) output rows, contiguous
    W,  # (C,) weight (unused when HAS_W is False)
    B,  # (C,) bias (unused when HAS_B is False)
    Mean,  # (N,) saved row means (LayerNorm only)
    Rstd,  # (N,) saved reciprocal standard deviations
    stride_x, C, eps,
    IS_RMS: tl.constexpr, HAS_W: tl.constexpr, HAS_B: tl.constexpr,
    BLOCK: tl.constexpr, COMPUTE: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < C
    x = tl.load(X + row * stride_x + cols, mask=mask, other=0.0).to(COMPUTE)
    if IS_RMS:
        xc = x
    else:
        mean = tl.sum(x, axis=0) / C
        xc = tl.where(mask, x - mean, 0.0)
        tl.store(Mean + row, mean)
    var = tl.sum(xc * xc, axis=0) / C
    rstd = 1.0 / tl.sqrt(var + eps)
    y = xc * rstd
    if HAS_W:
        y = y * tl.load(W + cols, mask=mask, other=0.0).to(COMPUTE)
    if HAS_B:
        y = y + tl.load(B + cols, mask=mask, other=0.0).to(COMPUTE)
    tl.store(Rstd + row, rstd)
    tl.store(Y + row * C + cols, y.to(Y.dtype.element_ty), mask=mask)


@triton.jit
def _norm_bwd_kernel(
    DY,  # (N, C) upstream gradient, contiguous
    X,  # (N, C) forward input, last dim contiguous
    W,  # (C,) weight (unused when HAS_W is False)
    Mean,  # (N,) saved means (LayerNorm only)
    Rstd,  # (N,) saved reciprocal standard deviations
    DX,  # (N, C) input gradient, contiguous
    DWp,  # (programs, C) per-program partial weight gradient
    DBp,  # (programs, C) per-program partial bias gradient
    stride_x, N, C, rows_per_prog,
    IS_RMS: tl.constexpr, HAS_W: tl.constexpr, HAS_B: tl.constexpr,
    BLOCK: tl.constexpr, ROWS: tl.constexpr, COMPUTE: tl.constexpr,
):
    pid = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    cmask = cols < C
    if HAS_W:
        w = tl.load(W + cols, mask=cmask, other=0.0).to(COMPUTE)
    dw = tl.zeros((BLOCK,), dtype=COMPUTE)
    db = tl.zeros((BLOCK,), dtype=COMPUTE)
    start = pid.to(tl.int64) * rows_per_prog
    n_rows = tl.minimum(rows_per_prog, N - start)
    for i in range(0, n_rows, ROWS):  # a (ROWS, C) tile per step: enough bytes in flight per SM
        r = i + tl.arange(0, ROWS)
        rmask = r < n_rows
        rows = start + r
        m2 = rmask[:, None] & cmask[None, :]
        x = tl.load(X + rows[:, None] * stride_x + cols[None, :], mask=m2, other=0.0).to(COMPUTE)
        dy = tl.load(DY + rows[:, None] * C + cols[None, :], mask=m2, other=0.0).to(COMPUTE)
        rstd = tl.load(Rstd + rows, mask=rmask, other=0.0)
        if IS_RMS:
            xhat = x * rstd[:, None]
        else:
            mean = tl.load(Mean + rows, mask=rmask, other=0.0)
            xhat = tl.where(m2, (x - mean[:, None]) * rstd[:, None], 0.0)
        if HAS_W:
            g = dy * w[None, :]
        else:
            g = dy
        c1 = tl.sum(g * xhat, axis=1) / C
        if IS_RMS:
            dx = (g - xhat * c1[:, None]) * rstd[:, None]
        else:
            c2 = tl.sum(g, axis=1) / C
            dx = (g - c2[:, None] - xhat * c1[:, None]) * rstd[:, None]
        tl.store(DX + rows[:, None] * C + cols[None, :], dx.to(DX.dtype.element_ty), mask=m2)
        dw += tl.sum(dy * xhat, axis=0)
        db += tl.sum(dy, axis=0)
    if HAS_W:
        tl.store(DWp + pid * C + cols, dw, mask=cmask)
    if HAS_B:
        tl.store(DBp + pid * C + cols, db, mask=cmask)


def _block(C: int) -> tuple[int, int]:
    block = triton.next_power_of_2(C)
    if block > 65536:
        raise fail("norm", f"row width {C} exceeds the fused kernel's 65536 limit",
                   "use the PyTorch reference (CARAMBA_KERNELS=reference) for such widths")
    return block, min(max(block // 256, 1), 16)


def check_inputs(op: str, x: torch.Tensor, w: torch.Tensor | None, b: torch.Tensor | None) -> None:
    check_same_device(op, x=x, weight=w, bias=b)
    check_dtype(op, "x", x)
    C = x.shape[-1]
    for name, p in (("weight", w), ("bias", b)):
        if p is not None:
            check_dtype(op, name, p)
            check_shape(op, name, p, (C,), "(C,)")


def _sig(t: torch.Tensor | None) -> tuple | None:
    return None if t is None else (t.shape, t.dtype, t.device)


_fwd_plans = SignatureCache()
_bwd_plans = SignatureCache()


def _fwd_plan(x: torch.Tensor, w: torch.Tensor | None, b: torch.Tensor | None, is_rms: bool) -> tuple:
    """Checks, then ``(C, out dtype, stat dtype, BLOCK, warps, COMPUTE)`` for these signatures."""
    check_inputs("rms_norm" if is_rms else "layer_norm", x, w, b)
    C = x.shape[-1]
    out_dtype = x.dtype if w is None else torch.promote_types(x.dtype, w.dtype)
    cdt = compute_dtype(x.dtype)
    return (C, out_dtype, torch.float64 if cdt == tl.float64 else torch.float32, *_block(C), cdt)


def norm_forward(x: torch.Tensor, w: torch.Tensor | None, b: torch.Tensor | None, eps: float, is_rms: bool):
    """Launch the forward kernel. Returns ``(y, x2d, mean, rstd)``; y has x's shape."""
    C, out_dtype, stat, block, warps, cdt = _fwd_plans.get(
        (x.shape, x.dtype, x.device, _sig(w), _sig(b), is_rms), lambda: _fwd_plan(x, w, b, is_rms))
    x2 = x if x.dim() == 2 else x.reshape(-1, C)
    if x2.stride(-1) != 1:
        x2 = x2.contiguous()
    N = x2.shape[0]
    y = torch.empty(x.shape, dtype=out_dtype, device=x.device)
    rstd = torch.empty(N, dtype=stat, device=x.device)
    mean = rstd if is_rms else torch.empty(N, dtype=stat, device=x.device)
    if N > 0:
        _norm_fwd_kernel[(N,)](x2, y, w if w is not None else x2, b if b is not None else x2, mean, rstd,
                               x2.stride(0), C, eps, IS_RMS=is_rms, HAS_W=w is not None,
                               HAS_B=b is not None, BLOCK=block, COMPUTE=cdt, num_warps=warps)
    return y, x2, mean, rstd


def _bwd_plan(N: int, C: int, dtype: torch.dtype, device: torch.device) -> tuple:
    """``(programs, rows per program, stat dtype, BLOCK, ROWS, warps, COMPUTE)``."""
    cdt = compute_dtype(dtype)
    progs = max(1, min(2 * num_programs(device), N))
    block, warps = _block(C)
    return (progs, triton.cdiv(N, progs) if N else 1, torch.float64 if cdt == tl.float64 else torch.float32,
            block, max(1, min(16, 8192 // block)), 8 if block >= 1024 else warps, cdt)


def norm_backward(dy: torch.Tensor, x2: torch.Tensor, w: torch.Tensor | None, has_b: bool,
                  mean: torch.Tensor, rstd: torch.Tensor, is_rms: bool):
    """Launch the backward kernel. Returns ``(dx (N, C), dw (C,) | None, db (C,) | None)``.

    Every program of the persistent grid writes its whole row of the (programs, C) weight /
    bias partials (zeros when it owns no rows), so they need no zero-fill.
    """
    N, C = x2.shape
    progs, rows_per_prog, stat, block, rows, warps, cdt = _bwd_plans.get(
        (N, C, x2.dtype, x2.device), lambda: _bwd_plan(N, C, x2.dtype, x2.device))
    dy2 = dy.reshape(N, C)
    if not dy2.is_contiguous():
        dy2 = dy2.contiguous()
    dx = torch.empty((N, C), dtype=x2.dtype, device=x2.device)
    has_w = w is not None
    dwp = torch.empty((progs, C), dtype=stat, device=x2.device) if has_w else dx
    dbp = torch.empty((progs, C), dtype=stat, device=x2.device) if has_b else dx
    if N > 0:
        _norm_bwd_kernel[(progs,)](dy2, x2, w if has_w else x2, mean, rstd, dx, dwp, dbp,
                                   x2.stride(0), N, C, rows_per_prog, IS_RMS=is_rms, HAS_W=has_w,
                                   HAS_B=has_b, BLOCK=block, ROWS=rows, COMPUTE=cdt, num_warps=warps)
    elif has_w or has_b:  # no rows: the gradients are zero
        dwp.zero_(), dbp.zero_()
    dw = dwp.sum(0).to(w.dtype) if has_w else None
    db = dbp.sum(0).to(w.dtype if has_w else x2.dtype) if has_b else None
    return dx, dw, db


class NormFunction(torch.autograd.Function):
    """Autograd wrapper shared by RMSNorm (``is_rms=True``) and LayerNorm."""

    @staticmethod
    def forward(ctx, x, w, b, eps: float, is_rms: bool):  # type: ignore[override]
        y, x2, mean, rstd = norm_forward(x, w, b, eps, is_rms)
        ctx.save_for_backward(x2, w, mean, rstd)
        ctx.has_b, ctx.is_rms, ctx.x_shape, ctx.b_dtype = b is not None, is_rms, x.shape, None if b is None else b.dtype
        return y

    @staticmethod
    def backward(ctx, dy):  # type: ignore[override]
        x2, w, mean, rstd = ctx.saved_tensors
        dx, dw, db = norm_backward(dy, x2, w, ctx.has_b, mean, rstd, ctx.is_rms)
        if db is not None:
            db = db.to(ctx.b_dtype)
        return dx.reshape(ctx.x_shape), dw, db, None, None


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None, eps: float) -> torch.Tensor:
    """RMSNorm over the last dim through the fused Triton kernels. x: (..., C)."""
    return NormFunction.apply(x, weight, None, eps, True)


def layer_norm(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float) -> torch.Tensor:
    """LayerNorm over the last dim through the fused Triton kernels. x: (..., C)."""
    return NormFunction.apply(x, weight, bias, eps, False)
