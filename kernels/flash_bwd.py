"""Flash attention backward (Triton): a dK/dV kernel and a dQ kernel (FlashAttention-2).

With P = softmax(scale * Q K^T) rebuilt block by block from the saved base-2 ``lse``, and
``delta = rowsum(dO * O)`` (computed by the dQ kernel, which runs first, for its own rows):

    dV = P^T dO        dS = P * (dO V^T - delta)        dQ = scale * dS K        dK = scale * dS^T Q

The dK/dV kernel owns a block of keys of one KV head and loops over every query head of
its GQA group and the query blocks that can see those keys (so GQA gradients are summed
in registers, deterministically, with no atomics). The dQ kernel owns a block of queries
and loops over the key blocks it attends to. DBA's geometric parts get their gradients
from the same dS: dQ_geo = scale * dS K_geo, dK_geo = scale * dS^T Q_geo.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from caramba.kernels.checks import SignatureCache
from caramba.kernels.flash_check import Blocks, bwd_blocks


@triton.jit
def _attn_bwd_dkdv_kernel(
    Q, K, V, Q2, K2,  # forward inputs, strided (last dim contiguous)
    DO,  # (B, H, T, Dv) output gradient, contiguous
    LSE, DELTA,  # (B, H, T) base-2 log-sum-exp and rowsum(dO * O)
    DK, DV, DK2,  # (B, Hkv, S, D), (B, Hkv, S, Dv), (B, Hkv, S, D2) outputs, contiguous
    sqb, sqh, sqt, skb, skh, sks, svb, svh, svs, s2qb, s2qh, s2qt, s2kb, s2kh, s2ks,
    H, HKV, GROUP, T, S, D, D2, DVD, qk_scale, scale, window,
    CAUSAL: tl.constexpr, HAS_WINDOW: tl.constexpr, HAS_GEO: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_D2: tl.constexpr,
    BLOCK_DV: tl.constexpr, PREC: tl.constexpr, ACC: tl.constexpr,
):
    pid_n = tl.program_id(0)
    bhk = tl.program_id(1)
    b = (bhk // HKV).to(tl.int64)
    hk = (bhk % HKV).to(tl.int64)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    offs_dv = tl.arange(0, BLOCK_DV)
    ncol = offs_n < S
    k = tl.load(K + b * skb + hk * skh + offs_n[:, None] * sks + offs_d[None, :],
                mask=ncol[:, None] & (offs_d < D)[None, :], other=0.0)
    v = tl.load(V + b * svb + hk * svh + offs_n[:, None] * svs + offs_dv[None, :],
                mask=ncol[:, None] & (offs_dv < DVD)[None, :], other=0.0)
    dk = tl.zeros((BLOCK_N, BLOCK_D), dtype=ACC)
    dv = tl.zeros((BLOCK_N, BLOCK_DV), dtype=ACC)
    if HAS_GEO:
        offs_d2 = tl.arange(0, BLOCK_D2)
        k2 = tl.load(K2 + b * s2kb + hk * s2kh + offs_n[:, None] * s2ks + offs_d2[None, :],
                     mask=ncol[:, None] & (offs_d2 < D2)[None, :], other=0.0)
        dk2 = tl.zeros((BLOCK_N, BLOCK_D2), dtype=ACC)
    m_lo = 0
    m_hi = T
    if CAUSAL:
        m_lo = tl.maximum(0, pid_n * BLOCK_N - (S - T))
        m_lo = (m_lo // BLOCK_M) * BLOCK_M
    if HAS_WINDOW:
        m_hi = tl.minimum(T, (pid_n + 1) * BLOCK_N - 1 + window - (S - T))
    for g in range(0, GROUP):
        h = hk * GROUP + g
        row0 = (b * H + h) * T
        for start_m in range(m_lo, m_hi, BLOCK_M):
            offs_m = start_m + tl.arange(0, BLOCK_M)
            mrow = offs_m < T
            qpos = offs_m + (S - T)
            q = tl.load(Q + b * sqb + h * sqh + offs_m[:, None] * sqt + offs_d[None, :],
                        mask=mrow[:, None] & (offs_d < D)[None, :], other=0.0)
            qk_t = tl.dot(k, tl.trans(q), input_precision=PREC, out_dtype=ACC)  # (BLOCK_N, BLOCK_M)
            if HAS_GEO:
                q2 = tl.load(Q2 + b * s2qb + h * s2qh + offs_m[:, None] * s2qt + offs_d2[None, :],
                             mask=mrow[:, None] & (offs_d2 < D2)[None, :], other=0.0)
                qk_t += tl.dot(k2, tl.trans(q2), input_precision=PREC, out_dtype=ACC)
            lse = tl.load(LSE + row0 + offs_m, mask=mrow, other=0.0)
            valid = ncol[:, None] & mrow[None, :]
            if CAUSAL:
                valid = valid & (offs_n[:, None] <= qpos[None, :])
            if HAS_WINDOW:
                valid = valid & (offs_n[:, None] > qpos[None, :] - window)
            p_t = tl.where(valid, tl.exp2(qk_t * qk_scale - lse[None, :]), 0.0)
            do = tl.load(DO + (row0 + offs_m[:, None]) * DVD + offs_dv[None, :],
                         mask=mrow[:, None] & (offs_dv < DVD)[None, :], other=0.0)
            dv += tl.dot(p_t.to(do.dtype), do, input_precision=PREC, out_dtype=ACC)
            dp_t = tl.dot(v, tl.trans(do), input_precision=PREC, out_dtype=ACC)
            delta = tl.load(DELTA + row0 + offs_m, mask=mrow, other=0.0)
            ds_t = p_t * (dp_t - delta[None, :])
            dk += tl.dot(ds_t.to(q.dtype), q, input_precision=PREC, out_dtype=ACC)
            if HAS_GEO:
                dk2 += tl.dot(ds_t.to(q2.dtype), q2, input_precision=PREC, out_dtype=ACC)
    out_row = bhk.to(tl.int64) * S + offs_n[:, None]
    tl.store(DK + out_row * D + offs_d[None, :], (dk * scale).to(DK.dtype.element_ty),
             mask=ncol[:, None] & (offs_d < D)[None, :])
    tl.store(DV + out_row * DVD + offs_dv[None, :], dv.to(DV.dtype.element_ty),
             mask=ncol[:, None] & (offs_dv < DVD)[None, :])
    if HAS_GEO:
        tl.store(DK2 + out_row * D2 + offs_d2[None, :], (dk2 * scale).to(DK2.dtype.element_ty),
                 mask=ncol[:, None] & (offs_d2 < D2)[None, :])


@triton.jit
def _attn_bwd_dq_kernel(
    Q, K, V, Q2, K2, DO, LSE,  # as in the dK/dV kernel
    O,  # (B, H, T, Dv) forward output, contiguous
    DELTA,  # (B, H, T) rowsum(dO * O): written here (each program owns its rows), read by the dK/dV kernel
    DQ, DQ2,  # (B, H, T, D), (B, H, T, D2) outputs, contiguous
    sqb, sqh, sqt, skb, skh, sks, svb, svh, svs, s2qb, s2qh, s2qt, s2kb, s2kh, s2ks,
    H, GROUP, T, S, D, D2, DVD, qk_scale, scale, window,
    CAUSAL: tl.constexpr, HAS_WINDOW: tl.constexpr, HAS_GEO: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_D2: tl.constexpr,
    BLOCK_DV: tl.constexpr, PREC: tl.constexpr, ACC: tl.constexpr,
):
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    hk = h // GROUP
    row0 = bh.to(tl.int64) * T
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    offs_dv = tl.arange(0, BLOCK_DV)
    mrow = offs_m < T
    qpos = offs_m + (S - T)
    q = tl.load(Q + b * sqb + h * sqh + offs_m[:, None] * sqt + offs_d[None, :],
                mask=mrow[:, None] & (offs_d < D)[None, :], other=0.0)
    do = tl.load(DO + (row0 + offs_m[:, None]) * DVD + offs_dv[None, :],
                 mask=mrow[:, None] & (offs_dv < DVD)[None, :], other=0.0)
    lse = tl.load(LSE + row0 + offs_m, mask=mrow, other=0.0)
    o = tl.load(O + (row0 + offs_m[:, None]) * DVD + offs_dv[None, :],
                mask=mrow[:, None] & (offs_dv < DVD)[None, :], other=0.0)
    delta = tl.sum(do.to(ACC) * o.to(ACC), axis=1)
    tl.store(DELTA + row0 + offs_m, delta, mask=mrow)
    dq = tl.zeros((BLOCK_M, BLOCK_D), dtype=ACC)
    if HAS_GEO:
        offs_d2 = tl.arange(0, BLOCK_D2)
        q2 = tl.load(Q2 + b * s2qb + h * s2qh + offs_m[:, None] * s2qt + offs_d2[None, :],
                     mask=mrow[:, None] & (offs_d2 < D2)[None, :], other=0.0)
        dq2 = tl.zeros((BLOCK_M, BLOCK_D2), dtype=ACC)
    lo = 0
    hi = S
    if CAUSAL:
        hi = tl.minimum(S, (pid_m + 1) * BLOCK_M + S - T)
    if HAS_WINDOW:
        lo = tl.maximum(0, pid_m * BLOCK_M + S - T - window + 1)
        lo = (lo // BLOCK_N) * BLOCK_N
    for start_n in range(lo, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        ncol = offs_n < S
        k = tl.load(K + b * skb + hk * skh + offs_n[:, None] * sks + offs_d[None, :],
                    mask=ncol[:, None] & (offs_d < D)[None, :], other=0.0)
        s = tl.dot(q, tl.trans(k), input_precision=PREC, out_dtype=ACC)
        if HAS_GEO:
            k2 = tl.load(K2 + b * s2kb + hk * s2kh + offs_n[:, None] * s2ks + offs_d2[None, :],
                         mask=ncol[:, None] & (offs_d2 < D2)[None, :], other=0.0)
            s += tl.dot(q2, tl.trans(k2), input_precision=PREC, out_dtype=ACC)
        valid = ncol[None, :] & mrow[:, None]
        if CAUSAL:
            valid = valid & (offs_n[None, :] <= qpos[:, None])
        if HAS_WINDOW:
            valid = valid & (offs_n[None, :] > qpos[:, None] - window)
        p = tl.where(valid, tl.exp2(s * qk_scale - lse[:, None]), 0.0)
        v = tl.load(V + b * svb + hk * svh + offs_n[:, None] * svs + offs_dv[None, :],
                    mask=ncol[:, None] & (offs_dv < DVD)[None, :], other=0.0)
        dp = tl.dot(do, tl.trans(v), input_precision=PREC, out_dtype=ACC)
        ds = p * (dp - delta[:, None])
        dq += tl.dot(ds.to(k.dtype), k, input_precision=PREC, out_dtype=ACC)
        if HAS_GEO:
            dq2 += tl.dot(ds.to(k2.dtype), k2, input_precision=PREC, out_dtype=ACC)
    tl.store(DQ + (row0 + offs_m[:, None]) * D + offs_d[None, :], (dq * scale).to(DQ.dtype.element_ty),
             mask=mrow[:, None] & (offs_d < D)[None, :])
    if HAS_GEO:
        tl.store(DQ2 + (row0 + offs_m[:, None]) * D2 + offs_d2[None, :], (dq2 * scale).to(DQ2.dtype.element_ty),
                 mask=mrow[:, None] & (offs_d2 < D2)[None, :])


def _s(t: torch.Tensor | None) -> tuple[int, int, int]:
    return (0, 0, 0) if t is None else (t.stride(0), t.stride(1), t.stride(2))


def _plan(q: torch.Tensor, D: int, D2: int, DVD: int, blocks: tuple[Blocks, Blocks] | None) -> tuple:
    """``(dK/dV tiles, dQ tiles, shared constexpr kwargs)`` for one signature."""
    kv_blk, q_blk = blocks or bwd_blocks(q, D + D2, DVD)
    common = dict(BLOCK_D=max(16, triton.next_power_of_2(D)), BLOCK_D2=max(16, triton.next_power_of_2(D2)) if D2 else 16,
                  BLOCK_DV=max(16, triton.next_power_of_2(DVD)), PREC=kv_blk.precision,
                  ACC=tl.float64 if q.dtype == torch.float64 else tl.float32)
    return kv_blk, q_blk, common


_plans = SignatureCache()


def attention_backward(do, q, k, v, q2, k2, o, lse, causal: bool, qk_scale: float, scale: float,
                       window: int | None, blocks: tuple[Blocks, Blocks] | None = None):
    """Gradients ``(dq, dk, dv, dq2, dk2)`` (the last two None without DBA parts).

    The dQ kernel runs first and also computes ``delta = rowsum(dO * O)`` for its rows
    (no separate pass, no eager ops); the dK/dV kernel, queued after it, reads delta.
    """
    B, H, T, D = q.shape
    Hkv, S, DVD = k.shape[1], k.shape[2], v.shape[3]
    geo = q2 is not None
    D2 = q2.shape[3] if geo else 0
    dev = q.device
    do = do if do.is_contiguous() else do.contiguous()
    o = o if o.is_contiguous() else o.contiguous()
    dq = torch.empty((B, H, T, D), dtype=q.dtype, device=dev)
    dk = torch.empty((B, Hkv, S, D), dtype=k.dtype, device=dev)
    dv = torch.empty((B, Hkv, S, DVD), dtype=v.dtype, device=dev)
    dq2 = torch.empty((B, H, T, D2), dtype=q.dtype, device=dev) if geo else None
    dk2 = torch.empty((B, Hkv, S, D2), dtype=q.dtype, device=dev) if geo else None
    if do.numel() == 0:
        return dq, dk.zero_(), dv.zero_(), dq2, dk2
    kv_blk, q_blk, common = _plans.get((D, D2, DVD, q.dtype, blocks), lambda: _plan(q, D, D2, DVD, blocks))
    delta = torch.empty((B, H, T), dtype=lse.dtype, device=dev)
    q2_, k2_ = (q2, k2) if geo else (q, k)
    strides = (*_s(q), *_s(k), *_s(v), *_s(q2), *_s(k2))
    flags = dict(CAUSAL=causal, HAS_WINDOW=window is not None, HAS_GEO=geo)
    _attn_bwd_dq_kernel[(triton.cdiv(T, q_blk.m), B * H)](
        q, k, v, q2_, k2_, do, lse, o, delta, dq, dq2 if geo else dq, *strides,
        H, H // Hkv, T, S, D, D2, DVD, qk_scale, scale, window or 0, BLOCK_M=q_blk.m, BLOCK_N=q_blk.n,
        num_warps=q_blk.warps, num_stages=q_blk.stages, **flags, **common)
    _attn_bwd_dkdv_kernel[(triton.cdiv(S, kv_blk.n), B * Hkv)](
        q, k, v, q2_, k2_, do, lse, delta, dk, dv, dk2 if geo else dk, *strides,
        H, Hkv, H // Hkv, T, S, D, D2, DVD, qk_scale, scale, window or 0, BLOCK_M=kv_blk.m, BLOCK_N=kv_blk.n,
        num_warps=kv_blk.warps, num_stages=kv_blk.stages, **flags, **common)
    return dq, dk, dv, dq2, dk2
