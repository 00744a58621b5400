"""Decode attention over a q8_0 / q4_0 quantised KV cache, dequantised inside the kernel.

A few new queries (T <= 16; GQA group x T <= 64) attend causally over S cached positions stored as int8 (q8_0)
or packed 4-bit (q4_0) values with one fp16 scale per 32 values (layout in
:func:`caramba.kernels.reference.quantize_kv`). The cache tensors may be strided views
(only their last dim must be contiguous), e.g. the first S positions of the growing
buffers of :class:`caramba.engine.infer.kvcache.LayerKVCache`, read in place. The kernel loads the compact bytes,
rebuilds each (BLOCK_N, D) tile in registers (``(value - zero) * scale``), and runs the
flash-attention online softmax on it, so HBM traffic is ~0.53x (q8_0) or ~0.28x (q4_0)
of an fp16 cache. Split-K: the S positions are divided among programs so a decode step
fills the GPU; the partial outputs are merged with their log-sum-exps (as in flash.py).
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from caramba.kernels.checks import INTERPRET, check_same_device, check_shape, fail
from caramba.kernels.flash import LOG2E, merge_splits
from caramba.kernels.launch import num_programs


@triton.jit
def _load_deq(Data, Scales, offs_n, offs_d, ncol, D, sd_n, ss_n, Q4: tl.constexpr):
    """Dequantised (BLOCK_N, BLOCK_D) fp32 tile of one head's cache rows ``offs_n``."""
    m = ncol[:, None] & (offs_d < D)[None, :]
    sc = tl.load(Scales + offs_n[:, None] * ss_n + (offs_d // 32)[None, :], mask=m, other=0.0).to(tl.float32)
    if Q4:
        byte = tl.load(Data + offs_n[:, None] * sd_n + (offs_d // 2)[None, :], mask=m, other=0).to(tl.int32)
        vals = ((byte >> ((offs_d % 2) * 4)[None, :]) & 0xF).to(tl.float32) - 8.0
    else:
        vals = tl.load(Data + offs_n[:, None] * sd_n + offs_d[None, :], mask=m, other=0).to(tl.float32)
    return vals * sc


@triton.jit
def _qdecode_kernel(
    Q,  # (B, H, T, D) queries, strides sqb/sqh/sqt, last dim contiguous
    KD, KS, VD, VS,  # caches: data (B, Hkv, S, D or D/2), scales (B, Hkv, S, D/32); last dims contiguous
    O, LSE,  # (splits, B, H, T, D) fp32 partial outputs, (splits, B, H, T) base-2 lse
    sqb, sqh, sqt,
    skdb, skdh, skdn, sksb, sksh, sksn, svdb, svdh, svdn, svsb, svsh, svsn,  # cache strides (batch, head, pos)
    H, GROUP, T, S, D, qk_scale, split_len,
    Q4: tl.constexpr, PREC: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):
    # One program serves every query head of one KV head's GQA group (GROUP * T rows), so
    # each cache byte is read once per group rather than once per query head.
    bhk = tl.program_id(0)
    sid = tl.program_id(1)
    HKV = H // GROUP
    b = (bhk // HKV).to(tl.int64)
    hk = (bhk % HKV).to(tl.int64)
    KDp = KD + b * skdb + hk * skdh  # strided: a view of a larger (growing) cache buffer needs no copy
    VDp = VD + b * svdb + hk * svdh
    KSp = KS + b * sksb + hk * sksh
    VSp = VS + b * svsb + hk * svsh
    r = tl.arange(0, BLOCK_M)  # row r: head hk * GROUP + r // T, query r % T
    mrow = r < GROUP * T
    h = hk * GROUP + r // T
    t = r % T
    offs_d = tl.arange(0, BLOCK_D)
    qpos = t + (S - T)
    q = tl.load(Q + b * sqb + h[:, None] * sqh + t[:, None] * sqt + offs_d[None, :],
                mask=mrow[:, None] & (offs_d < D)[None, :], other=0.0)
    m_i = tl.full((BLOCK_M,), float("-inf"), dtype=tl.float32)
    l_i = tl.zeros((BLOCK_M,), dtype=tl.float32)
    acc = tl.zeros((BLOCK_M, BLOCK_D), dtype=tl.float32)
    for start_n in range(sid * split_len, tl.minimum(S, (sid + 1) * split_len), BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        ncol = offs_n < S
        k = _load_deq(KDp, KSp, offs_n, offs_d, ncol, D, skdn, sksn, Q4).to(q.dtype)
        s = tl.dot(q, tl.trans(k), input_precision=PREC) * qk_scale
        s = tl.where(ncol[None, :] & (offs_n[None, :] <= qpos[:, None]), s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        p = tl.exp2(s - m_safe[:, None])
        alpha = tl.exp2(m_i - m_safe)
        l_i = l_i * alpha + tl.sum(p, axis=1)
        v = _load_deq(VDp, VSp, offs_n, offs_d, ncol, D, svdn, svsn, Q4).to(q.dtype)
        acc = acc * alpha[:, None] + tl.dot(p.to(q.dtype), v, input_precision=PREC)
        m_i = m_new
    l_safe = tl.where(l_i == 0.0, 1.0, l_i)
    row = ((sid * (tl.num_programs(0) // HKV) + b) * H + h).to(tl.int64) * T + t  # (split, b, h, t)
    tl.store(LSE + row, m_i + tl.log2(l_safe), mask=mrow)
    tl.store(O + row[:, None] * D + offs_d[None, :], acc / l_safe[:, None],
             mask=mrow[:, None] & (offs_d < D)[None, :])


def decode_attention_quantized(q: torch.Tensor, k_data: torch.Tensor, k_scales: torch.Tensor,
                               v_data: torch.Tensor, v_scales: torch.Tensor, fmt: str, *,
                               scale: float | None = None) -> torch.Tensor:
    """Triton decode attention over a quantised cache (inference only: no autograd)."""
    op = "decode_attention_quantized"
    if fmt not in ("q8_0", "q4_0"):
        raise fail(op, f"unknown cache format {fmt!r}", "use 'q8_0' or 'q4_0'")
    check_same_device(op, q=q, k_data=k_data, k_scales=k_scales, v_data=v_data, v_scales=v_scales)
    B, H, T, D = q.shape
    if q.dtype not in (torch.float16, torch.bfloat16, torch.float32) or D % 32 or T > 16 or q.stride(-1) != 1:
        raise fail(op, f"q {tuple(q.shape)} {q.dtype} stride {q.stride()}",
                   "pass q (B, H, T<=16, D) fp16/bf16/fp32 with D a multiple of 32 and a contiguous last dim")
    Hkv, S = k_data.shape[1], k_data.shape[2]
    want = (B, Hkv, S, D // 2 if fmt == "q4_0" else D)
    for name, data, sc in (("k", k_data, k_scales), ("v", v_data, v_scales)):
        check_shape(op, f"{name}_data", data, want, "(B, Hkv, S, D or D/2)")
        check_shape(op, f"{name}_scales", sc, (B, Hkv, S, D // 32), "(B, Hkv, S, D/32)")
        if data.dtype != (torch.uint8 if fmt == "q4_0" else torch.int8) or sc.dtype != torch.float16:
            raise fail(op, f"{name} cache is {data.dtype}/{sc.dtype} for {fmt}",
                       "build the cache with caramba.kernels.reference.quantize_kv")
        if data.stride(-1) != 1 or sc.stride(-1) != 1:
            raise fail(op, f"{name} cache has last-dim strides {data.stride(-1)}/{sc.stride(-1)}",
                       "pass cache views whose last dim is contiguous (batch/head/position strides may be any)")
    if H % Hkv or T > S:
        raise fail(op, f"H={H}, Hkv={Hkv}, T={T}, S={S}", "need H % Hkv == 0 and T <= S")
    block_n = 16 if _interp() else 64
    target = 2 * num_programs(q.device)
    splits = max(1, min(triton.cdiv(target, B * Hkv), S // (4 * block_n)))
    split_len = triton.cdiv(triton.cdiv(S, splits), block_n) * block_n
    splits = triton.cdiv(S, split_len)
    o = torch.empty((splits, B, H, T, D), dtype=torch.float32, device=q.device)
    lse = torch.empty((splits, B, H, T), dtype=torch.float32, device=q.device)
    qk = (scale if scale is not None else 1.0 / math.sqrt(D)) * LOG2E
    if (H // Hkv) * T > 64:
        raise fail(op, f"GQA group {H // Hkv} x T={T} query rows exceed 64 per program",
                   "decode at most 64 // (H / Hkv) tokens per call")
    _qdecode_kernel[(B * Hkv, splits)](q, k_data, k_scales, v_data, v_scales, o, lse, q.stride(0), q.stride(1),
                                       q.stride(2), *k_data.stride()[:3], *k_scales.stride()[:3],
                                       *v_data.stride()[:3], *v_scales.stride()[:3], H, H // Hkv, T, S, D, qk,
                                       split_len, Q4=fmt == "q4_0",
                                       PREC="ieee" if q.dtype == torch.float32 else "tf32",
                                       BLOCK_M=max(16, triton.next_power_of_2((H // Hkv) * T)), BLOCK_N=block_n, BLOCK_D=max(32, triton.next_power_of_2(D)),
                                     num_warps=4, num_stages=3)
    return merge_splits(o, lse, q.dtype)[0]


def _interp() -> bool:
    return INTERPRET
