"""Flash attention forward (Triton) and the autograd wrapper; backward in flash_bwd.py.

One program computes a (BLOCK_M, Dv) output tile of one (batch, head): it streams key/value
blocks of its KV head (GQA: head h reads KV head h // (H / Hkv)), keeps the running row
max ``m`` and normaliser ``l`` in registers (online softmax, base-2 exponentials with the
scale folded into log2(e)), and writes the output and the row log-sum-exp ``lse`` (base 2,
fp32, (B, H, T)) that the backward needs. Nothing of size T x S ever reaches memory.

Masks: query i sits at absolute position ``S - T + i`` (T < S is decode/prefill-with-
cache). ``causal`` allows keys at positions <= the query's; ``window`` W allows keys at
positions > query - W. Key blocks entirely outside the allowed band are skipped, not
masked, so causal costs half and a window costs O(T * W).

DBA (``decoupled_attention``): with ``HAS_GEO`` the score is ``q_sem·k_sem + q_geo·k_geo``,
two dot products into one accumulator in the same pass (never a concatenated copy).

    o = attention(q, k, v, causal=True)                # q (B,H,T,D), k/v (B,Hkv,S,D) CUDA
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from caramba.kernels import flash_bwd
from caramba.kernels.checks import SignatureCache
from caramba.kernels.flash_check import Blocks, check_attention_cached, fwd_blocks
from caramba.kernels.launch import num_programs

LOG2E = 1.4426950408889634


@triton.jit
def _fwd_inner(acc, l_i, m_i, q, q2, Kp, Vp, K2p, sks, svs, s2ks, offs_d, offs_d2, offs_dv, D, D2, DV, S, qpos,
               window, qk_scale, start, end, MASK: tl.constexpr, CAUSAL: tl.constexpr, HAS_WINDOW: tl.constexpr,
               HAS_GEO: tl.constexpr, BLOCK_N: tl.constexpr, PREC: tl.constexpr, ACC: tl.constexpr):
    """Stream key blocks [start, end); MASK=False for blocks every query of the tile may see."""
    for start_n in range(start, end, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        ncol = offs_n < S
        kt = tl.load(Kp + offs_n[None, :] * sks + offs_d[:, None], mask=ncol[None, :] & (offs_d < D)[:, None],
                     other=0.0)
        s = tl.dot(q, kt, input_precision=PREC, out_dtype=ACC)
        if HAS_GEO:
            k2t = tl.load(K2p + offs_n[None, :] * s2ks + offs_d2[:, None],
                          mask=ncol[None, :] & (offs_d2 < D2)[:, None], other=0.0)
            s += tl.dot(q2, k2t, input_precision=PREC, out_dtype=ACC)
        s = s * qk_scale
        if MASK:
            valid = ncol[None, :]
            if CAUSAL:
                valid = valid & (offs_n[None, :] <= qpos[:, None])
            if HAS_WINDOW:
                valid = valid & (offs_n[None, :] > qpos[:, None] - window)
            s = tl.where(valid, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        p = tl.exp2(s - m_safe[:, None])
        alpha = tl.exp2(m_i - m_safe)
        l_i = l_i * alpha + tl.sum(p, axis=1)
        v = tl.load(Vp + offs_n[:, None] * svs + offs_dv[None, :], mask=ncol[:, None] & (offs_dv < DV)[None, :],
                    other=0.0)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PREC, out_dtype=ACC)
        m_i = m_new
    return acc, l_i, m_i


@triton.jit
def _attn_fwd_kernel(
    Q, K, V,  # (B, H, T, D), (B, Hkv, S, D), (B, Hkv, S, Dv); strides below, last dim contiguous
    Q2, K2,  # DBA geometric parts (B, H, T, D2), (B, Hkv, S, D2); unused without HAS_GEO
    O,  # (B, H, T, Dv) output, contiguous
    LSE,  # (B, H, T) fp32 row log-sum-exp, base 2, of the scaled scores
    sqb, sqh, sqt, skb, skh, sks, svb, svh, svs,
    s2qb, s2qh, s2qt, s2kb, s2kh, s2ks,
    H, GROUP, T, S, D, D2, DV, qk_scale, window, split_len,
    CAUSAL: tl.constexpr, HAS_WINDOW: tl.constexpr, HAS_GEO: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_D2: tl.constexpr,
    BLOCK_DV: tl.constexpr, PREC: tl.constexpr, ACC: tl.constexpr,
):
    pid_m = tl.program_id(0)
    sid = tl.program_id(2)  # split-K index: this program sees keys [sid * split_len, (sid + 1) * split_len)
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    hk = h // GROUP
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    offs_dv = tl.arange(0, BLOCK_DV)
    qpos = offs_m + (S - T)
    mrow = offs_m < T
    q = tl.load(Q + b * sqb + h * sqh + offs_m[:, None] * sqt + offs_d[None, :],
                mask=mrow[:, None] & (offs_d < D)[None, :], other=0.0)
    if HAS_GEO:
        offs_d2 = tl.arange(0, BLOCK_D2)
        q2 = tl.load(Q2 + b * s2qb + h * s2qh + offs_m[:, None] * s2qt + offs_d2[None, :],
                     mask=mrow[:, None] & (offs_d2 < D2)[None, :], other=0.0)
    m_i = tl.full((BLOCK_M,), float("-inf"), dtype=ACC)
    l_i = tl.zeros((BLOCK_M,), dtype=ACC)
    acc = tl.zeros((BLOCK_M, BLOCK_DV), dtype=ACC)
    lo = 0
    hi = S
    if CAUSAL:
        hi = tl.minimum(S, (pid_m + 1) * BLOCK_M + S - T)
    if HAS_WINDOW:
        lo = tl.maximum(0, pid_m * BLOCK_M + S - T - window + 1)
        lo = (lo // BLOCK_N) * BLOCK_N
    lo = tl.maximum(lo, sid * split_len)
    hi = tl.minimum(hi, (sid + 1) * split_len)
    # keys every query row of this tile may see need no mask: [full_lo, full_hi)
    full_lo = lo
    full_hi = (S // BLOCK_N) * BLOCK_N
    if CAUSAL:
        full_hi = tl.minimum(full_hi, ((pid_m * BLOCK_M + S - T + 1) // BLOCK_N) * BLOCK_N)
    if HAS_WINDOW:
        qmax = pid_m * BLOCK_M + BLOCK_M - 1 + S - T
        full_lo = tl.maximum(lo, ((qmax - window + 1 + BLOCK_N - 1) // BLOCK_N) * BLOCK_N)
    full_lo = tl.minimum(full_lo, hi)
    full_hi = tl.minimum(tl.maximum(full_hi, full_lo), hi)
    Kp = K + b * skb + hk * skh
    Vp = V + b * svb + hk * svh
    K2p = K2 + b * s2kb + hk * s2kh
    if not HAS_GEO:
        offs_d2 = offs_d
        q2 = q
    acc, l_i, m_i = _fwd_inner(acc, l_i, m_i, q, q2, Kp, Vp, K2p, sks, svs, s2ks, offs_d, offs_d2, offs_dv, D, D2,
                               DV, S, qpos, window, qk_scale, lo, full_lo, True, CAUSAL, HAS_WINDOW, HAS_GEO,
                               BLOCK_N, PREC, ACC)
    acc, l_i, m_i = _fwd_inner(acc, l_i, m_i, q, q2, Kp, Vp, K2p, sks, svs, s2ks, offs_d, offs_d2, offs_dv, D, D2,
                               DV, S, qpos, window, qk_scale, full_lo, full_hi, False, CAUSAL, HAS_WINDOW,
                               HAS_GEO, BLOCK_N, PREC, ACC)
    acc, l_i, m_i = _fwd_inner(acc, l_i, m_i, q, q2, Kp, Vp, K2p, sks, svs, s2ks, offs_d, offs_d2, offs_dv, D, D2,
                               DV, S, qpos, window, qk_scale, full_hi, hi, True, CAUSAL, HAS_WINDOW, HAS_GEO,
                               BLOCK_N, PREC, ACC)
    l_safe = tl.where(l_i == 0.0, 1.0, l_i)
    out = acc / l_safe[:, None]
    row0 = (sid * tl.num_programs(1) + bh).to(tl.int64) * T  # splits write separate partials
    tl.store(LSE + row0 + offs_m, m_i + tl.log2(l_safe), mask=mrow)
    tl.store(O + row0 * DV + offs_m[:, None] * DV + offs_dv[None, :],
             out.to(O.dtype.element_ty), mask=mrow[:, None] & (offs_dv < DV)[None, :])


def _strides(t: torch.Tensor | None) -> tuple[int, int, int]:
    return (0, 0, 0) if t is None else (t.stride(0), t.stride(1), t.stride(2))


def _splits(programs: int, S: int, block_n: int, device: torch.device) -> int:
    """Split-K factor: when (b, h, query-tile) programs cannot fill the GPU (decode), split the
    keys so about two programs per SM run, each over at least 4 key blocks."""
    target = 2 * num_programs(device)
    if programs >= target:
        return 1
    return max(1, min(triton.cdiv(target, programs), S // (4 * block_n)))


def _fwd_plan(q: torch.Tensor, B: int, H: int, T: int, S: int, D: int, D2: int, DV: int,
              blocks: Blocks | None) -> tuple:
    """``(grid, splits, split_len, constexpr kwargs, stat dtype)`` for one call signature."""
    blocks = blocks or fwd_blocks(q, D + D2, DV, T)
    mtiles = triton.cdiv(T, blocks.m)
    splits = _splits(B * H * mtiles, S, blocks.n, q.device)
    split_len = triton.cdiv(triton.cdiv(S, splits), blocks.n) * blocks.n
    splits = triton.cdiv(S, split_len)
    f64 = q.dtype == torch.float64
    kw = dict(BLOCK_M=blocks.m, BLOCK_N=blocks.n, BLOCK_D=max(16, triton.next_power_of_2(D)),
              BLOCK_D2=max(16, triton.next_power_of_2(D2)) if D2 else 16, BLOCK_DV=max(16, triton.next_power_of_2(DV)),
              PREC=blocks.precision, ACC=tl.float64 if f64 else tl.float32, num_warps=blocks.warps,
              num_stages=blocks.stages)
    return (mtiles, B * H, splits), splits, split_len, kw, torch.float64 if f64 else torch.float32


_plans = SignatureCache()


def attention_forward(q, k, v, q2, k2, causal: bool, scale: float, window: int | None,
                      blocks: Blocks | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Launch the forward kernel. Returns ``(o (B, H, T, Dv), lse (B, H, T) fp32 base 2)``.

    With split-K (few query tiles, long S) each split writes an fp32 partial output and
    lse; they are merged here: ``lse = log2(sum 2^lse_s)``, ``o = sum 2^(lse_s - lse) o_s``.
    Launch parameters are computed once per (shapes, dtype, device, tiles) and remembered.
    """
    B, H, T, D = q.shape
    Hkv, S, DV = k.shape[1], k.shape[2], v.shape[3]
    D2 = q2.shape[3] if q2 is not None else 0
    if B * H * T == 0:
        stat = torch.float64 if q.dtype == torch.float64 else torch.float32
        return q.new_empty((B, H, T, DV)), torch.empty((B, H, T), dtype=stat, device=q.device)
    grid, splits, split_len, kw, stat = _plans.get(
        (B, H, T, S, D, D2, DV, q.dtype, q.device, blocks),
        lambda: _fwd_plan(q, B, H, T, S, D, D2, DV, blocks))
    if splits == 1:  # the kernel's split-0 layout is exactly (B, H, T, Dv) / (B, H, T)
        o = torch.empty((B, H, T, DV), dtype=q.dtype, device=q.device)
        lse = torch.empty((B, H, T), dtype=stat, device=q.device)
    else:
        o = torch.empty((splits, B, H, T, DV), dtype=stat, device=q.device)
        lse = torch.empty((splits, B, H, T), dtype=stat, device=q.device)
    geo = q2 is not None
    _attn_fwd_kernel[grid](
        q, k, v, q2 if geo else q, k2 if geo else k, o, lse,
        *_strides(q), *_strides(k), *_strides(v), *(_strides(q2) if geo else (0, 0, 0)),
        *(_strides(k2) if geo else (0, 0, 0)),
        H, H // Hkv, T, S, D, D2, DV, scale * LOG2E, window or 0, split_len,
        CAUSAL=causal, HAS_WINDOW=window is not None, HAS_GEO=geo, **kw,
    )
    if splits == 1:
        return o, lse
    return merge_splits(o, lse, q.dtype)


def merge_splits(o: torch.Tensor, lse: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge split-K partials ``o (splits, ..., Dv)``, base-2 ``lse (splits, ...)``."""
    top = lse.max(0).values
    w = torch.exp2(lse - top)  # 0 for splits that saw no allowed key
    total = w.sum(0)
    return (o * (w / total)[..., None]).sum(0).to(dtype), top + torch.log2(total)


class FlashAttentionFunction(torch.autograd.Function):
    """Autograd for plain (q2 = k2 = None) and DBA attention."""

    @staticmethod
    def forward(ctx, q, k, v, q2, k2, causal: bool, scale: float, window: int | None):  # type: ignore[override]
        o, lse = attention_forward(q, k, v, q2, k2, causal, scale, window)
        ctx.save_for_backward(q, k, v, q2, k2, o, lse)
        ctx.causal, ctx.scale, ctx.window = causal, scale, window
        return o

    @staticmethod
    def backward(ctx, do):  # type: ignore[override]
        q, k, v, q2, k2, o, lse = ctx.saved_tensors
        dq, dk, dv, dq2, dk2 = flash_bwd.attention_backward(
            do, q, k, v, q2, k2, o, lse, ctx.causal, ctx.scale * LOG2E, ctx.scale, ctx.window)
        return dq, dk, dv, dq2, dk2, None, None, None


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool, scale: float | None = None,
              window: int | None = None) -> torch.Tensor:
    """Flash attention (Triton). q (B, H, T, D); k (B, Hkv, S, D); v (B, Hkv, S, Dv); T <= S."""
    check_attention_cached("attention", q, k, v, None, None, window)
    scale = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
    return FlashAttentionFunction.apply(q, k, v, None, None, causal, scale, window)


def decoupled_attention(q_sem: torch.Tensor, k_sem: torch.Tensor, q_geo: torch.Tensor, k_geo: torch.Tensor,
                        v: torch.Tensor, *, causal: bool, scale: float | None = None,
                        window: int | None = None) -> torch.Tensor:
    """DBA attention (Triton): semantic and geometric scores summed inside the flash kernel."""
    check_attention_cached("decoupled_attention", q_sem, k_sem, v, q_geo, k_geo, window)
    scale = scale if scale is not None else 1.0 / math.sqrt(q_sem.shape[-1] + q_geo.shape[-1])
    return FlashAttentionFunction.apply(q_sem, k_sem, v, q_geo, k_geo, causal, scale, window)
