"""Input checks and tile sizes for the flash attention kernels.

Tile sizes are fixed per (head dim, dtype) — no autotuning — so results are bitwise
reproducible run to run (``apples_to_apples`` manifests rely on that). Under the
Triton interpreter tiles are tiny so the CPU tests stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from caramba.kernels.checks import (
    INTERPRET, SignatureCache, check_dtype, check_last_dim_contiguous, check_same_device, check_shape, fail,
)

ATTN_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


@dataclass(frozen=True)
class Blocks:
    m: int  # query rows per tile
    n: int  # key rows per tile
    warps: int
    stages: int
    precision: str  # tl.dot input precision: "ieee" for fp32/fp64 (exact), "tf32" unused by 16-bit


def _interp() -> bool:
    return INTERPRET


def _prec(dtype: torch.dtype) -> str:
    return "ieee" if dtype in (torch.float32, torch.float64) else "tf32"


def fwd_blocks(q: torch.Tensor, dqk: int, dv: int, T: int) -> Blocks:
    """Forward tiles. dqk = summed query/key head dims (D + D2 for DBA); T = query length.

    bf16/fp16 choices come from ``bench/kernels_attn_sweep.py`` on an H100 (2026-11-23):
    D128 m128 n64 w8 s3 (431 TFLOP/s causal S4096), D64 m64 n64 w4 s3 (356). Decode-sized
    T (<= 16) uses 16-row query tiles so a single query does not pay for 128 rows.
    """
    if _interp():
        return Blocks(16, 16, 1, 1, _prec(q.dtype))
    wide = max(dqk, dv) > 64
    if T <= 16:
        return Blocks(16, 64 if wide else 128, 4, 3, _prec(q.dtype))
    if q.dtype in (torch.float32, torch.float64):
        return Blocks(64, 32, 4 if not wide else 8, 2, _prec(q.dtype))
    return Blocks(128, 64, 8, 3, _prec(q.dtype)) if wide else Blocks(64, 64, 4, 3, _prec(q.dtype))


def bwd_blocks(q: torch.Tensor, dqk: int, dv: int) -> tuple[Blocks, Blocks]:
    """Backward tiles: (dK/dV kernel: m = query step, n = key rows owned; dQ kernel)."""
    if _interp():
        return Blocks(16, 16, 1, 1, _prec(q.dtype)), Blocks(16, 16, 1, 1, _prec(q.dtype))
    wide = max(dqk, dv) > 64
    if q.dtype in (torch.float32, torch.float64):
        return Blocks(32, 32, 4, 1, _prec(q.dtype)), Blocks(32, 32, 4, 1, _prec(q.dtype))
    # sweep winners (H100, bf16, causal S4096): dK/dV m32 n64 w4 s3 for both head dims;
    # dQ m128 n32 w4 s3 at D128, m64 n32 w4 s3 at D64
    kv = Blocks(32, 64, 4, 3, _prec(q.dtype))
    return kv, Blocks(128, 32, 4, 3, _prec(q.dtype)) if wide else Blocks(64, 32, 4, 3, _prec(q.dtype))


def check_attention(op: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, q2: torch.Tensor | None,
                    k2: torch.Tensor | None, window: int | None) -> None:
    """Validate shapes/dtypes/devices/strides of an attention call; raise naming the culprit."""
    check_same_device(op, q=q, k=k, v=v, q_geo=q2, k_geo=k2)
    for name, t in (("q", q), ("k", k), ("v", v), ("q_geo", q2), ("k_geo", k2)):
        if t is None:
            continue
        check_dtype(op, name, t, ATTN_DTYPES)
        check_shape(op, name, t, (None, None, None, None), "(B, heads, len, dim)")
        check_last_dim_contiguous(op, name, t)
        if t.dtype != q.dtype:
            raise fail(op, f"{name} is {t.dtype} but q is {q.dtype}", "cast q, k, v to one dtype")
    B, H, T, D = q.shape
    Hkv, S = k.shape[1], k.shape[2]
    check_shape(op, "k", k, (B, None, None, D), "(B, Hkv, S, D)")
    check_shape(op, "v", v, (B, Hkv, S, None), "(B, Hkv, S, Dv)")
    if H % Hkv:
        raise fail(op, f"q has {H} heads, not a multiple of k's {Hkv}", "use n_heads divisible by n_kv_heads")
    if T > S:
        raise fail(op, f"query length T={T} exceeds key length S={S}",
                   "append the new keys to the cache before attending (T <= S)")
    if max(D, v.shape[3]) > 256:
        raise fail(op, f"head dim {max(D, v.shape[3])} > 256 is not supported by the flash kernel",
                   "use head dims <= 256")
    if window is not None and window < 1:
        raise fail(op, f"window={window}", "window must be >= 1 (or None for full attention)")
    if q2 is not None and k2 is not None:
        check_shape(op, "q_geo", q2, (B, H, T, None), "(B, H, T, Dg)")
        check_shape(op, "k_geo", k2, (B, Hkv, S, q2.shape[3]), "(B, Hkv, S, Dg)")


_checked = SignatureCache()


def _sig(t: torch.Tensor | None) -> tuple | None:
    return None if t is None else (t.shape, t.dtype, t.device, t.stride(-1) if t.dim() else 1)


def check_attention_cached(op: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, q2: torch.Tensor | None,
                           k2: torch.Tensor | None, window: int | None) -> None:
    """:func:`check_attention` once per signature (everything it reads: shapes, dtypes, devices,
    last-dim strides, window)."""
    _checked.get((op, _sig(q), _sig(k), _sig(v), _sig(q2), _sig(k2), window),
                 lambda: check_attention(op, q, k, v, q2, k2, window))
