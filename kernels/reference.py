"""PyTorch references: the definition of every operation, and the CPU/MPS path.

Each function is the semantics a Triton kernel must reproduce (the tests compare against
these), and the implementation the dispatch table picks where Triton is not the fast
path. Shapes: (B)atch, (H)eads, (T) query length, (S) key length, (D) head dim,
(C) channels, (N) rows, (V) vocabulary.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from caramba.kernels import scan_ref


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None, eps: float) -> torch.Tensor:
    """RMSNorm over the last dim: x / sqrt(mean(x^2) + eps) * weight. x: (..., C)."""
    xf = x.float() if x.dtype != torch.float64 else x
    y = (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)
    return y * weight if weight is not None else y


def layer_norm(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float) -> torch.Tensor:
    """LayerNorm over the last dim. x: (..., C)."""
    return F.layer_norm(x, (x.shape[-1],), weight, bias, eps)


def swiglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """silu(gate) * up, elementwise."""
    return F.silu(gate) * up


def geglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """gelu(gate, tanh approximation) * up, elementwise."""
    return F.gelu(gate, approximate="tanh") * up


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding in the rotate-half (Llama) layout, optionally on a prefix of D.

    x: (B, H, T, D); cos, sin: (T, R/2) with R <= D even. The first R dims are rotated
    as pairs (x[..., i], x[..., R/2 + i]); dims R..D pass through unchanged (partial
    rotary, e.g. DBA's geometric part). Scaling variants (llama3, NTK) live in the
    tables. Returns a new tensor.
    """
    r2 = cos.shape[-1]
    x1, x2, rest = x[..., :r2], x[..., r2:2 * r2], x[..., 2 * r2:]
    c, s = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * c - x2 * s, x1 * s + x2 * c, rest), dim=-1)


def _mask(T: int, S: int, causal: bool, window: int | None, device: torch.device) -> torch.Tensor:
    """(T, S) boolean mask; query i sits at absolute position S - T + i."""
    qpos = torch.arange(S - T, S, device=device)[:, None]
    kpos = torch.arange(S, device=device)[None, :]
    allowed = torch.ones(T, S, dtype=torch.bool, device=device)
    if causal:
        allowed &= kpos <= qpos
    if window is not None:
        allowed &= kpos > qpos - window
    return allowed


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool, scale: float | None = None,
    window: int | None = None, dropout_p: float = 0.0,
) -> torch.Tensor:
    """Scaled dot-product attention with GQA/MQA and an optional sliding window.

    q: (B, H, T, D); k: (B, Hkv, S, D); v: (B, Hkv, S, Dv) with H % Hkv == 0. When T < S
    (decode), query i sits at absolute position S - T + i for the causal/window masks.
    Returns (B, H, T, Dv).
    """
    H, T, D = q.shape[1], q.shape[2], q.shape[3]
    Hkv, S = k.shape[1], k.shape[2]
    if H != Hkv:
        k = k.repeat_interleave(H // Hkv, dim=1)
        v = v.repeat_interleave(H // Hkv, dim=1)
    scale = scale if scale is not None else 1.0 / math.sqrt(D)
    if window is None and (not causal or T == S):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal and T > 1, scale=scale, dropout_p=dropout_p)
    allowed = _mask(T, S, causal, window, q.device)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, scale=scale, dropout_p=dropout_p)


def decoupled_attention(
    q_sem: torch.Tensor, k_sem: torch.Tensor, q_geo: torch.Tensor, k_geo: torch.Tensor, v: torch.Tensor, *,
    causal: bool, scale: float | None = None, window: int | None = None,
) -> torch.Tensor:
    """DBA attention: scores = (q_sem·k_sem + q_geo·k_geo) * scale, softmax, @ v.

    q_sem: (B, H, T, Ds), k_sem: (B, Hkv, S, Ds), q_geo: (B, H, T, Dg) (RoPE already
    applied), k_geo: (B, Hkv, S, Dg), v: (B, Hkv, S, Dv). ``scale`` defaults to
    1/sqrt(Ds + Dg). The score sum equals one dot product over the concatenated head
    dims, which is how this reference computes it. Returns (B, H, T, Dv).
    """
    scale = scale if scale is not None else 1.0 / math.sqrt(q_sem.shape[-1] + q_geo.shape[-1])
    return attention(torch.cat((q_sem, q_geo), -1), torch.cat((k_sem, k_geo), -1), v,
                     causal=causal, scale=scale, window=window)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Mean token cross-entropy over non-ignored targets. logits: (N, V), targets: (N,)."""
    return F.cross_entropy(logits.float(), targets, ignore_index=ignore_index)


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                         ignore_index: int = -100) -> torch.Tensor:
    """cross_entropy(hidden @ weight.T, targets). hidden: (N, C), weight: (V, C)."""
    return cross_entropy(hidden @ weight.t(), targets, ignore_index)


# Selective scan (Mamba S6): the definition and the fast exact CPU path live in their own
# module (a loop with a hand-written backward); it is this op's reference implementation.
selective_scan = scan_ref.selective_scan


QK_BLOCK = 32  # values per quantisation block (one fp16 scale each), as in GGML's q8_0/q4_0


def quantize_kv(x: torch.Tensor, fmt: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantise a K or V cache ``x (B, Hkv, S, D)`` (D % 32 == 0) per 32-value block.

    ``q8_0``: data int8 ``(B, Hkv, S, D)``, x ≈ data * scale, scale = absmax / 127.
    ``q4_0``: data uint8 ``(B, Hkv, S, D/2)``, value 2i in the low nibble and 2i+1 in the
    high one, x ≈ (nibble - 8) * scale, scale = absmax / 7. Scales: fp16 ``(B, Hkv, S, D/32)``.
    """
    *lead, D = x.shape
    blocks = x.float().reshape(*lead, D // QK_BLOCK, QK_BLOCK)
    amax = blocks.abs().amax(-1, keepdim=True)
    top = 127.0 if fmt == "q8_0" else 7.0
    scale = (amax / top).to(torch.float16)
    inv = torch.where(scale == 0, torch.zeros_like(amax), 1.0 / scale.float())
    q = torch.round(blocks * inv).clamp(-top - (0 if fmt == "q8_0" else 1), top).reshape(*lead, D)
    if fmt == "q8_0":
        return q.to(torch.int8), scale.squeeze(-1)
    u = (q + 8).to(torch.uint8)
    return (u[..., 0::2] | (u[..., 1::2] << 4)).contiguous(), scale.squeeze(-1)


def dequantize_kv(data: torch.Tensor, scales: torch.Tensor, fmt: str) -> torch.Tensor:
    """Inverse of :func:`quantize_kv` (fp32 result, ``(B, Hkv, S, D)``)."""
    if fmt == "q8_0":
        vals = data.float()
    else:
        lo, hi = (data & 0xF).float() - 8, (data >> 4).float() - 8
        vals = torch.stack((lo, hi), -1).flatten(-2)
    *lead, D = vals.shape
    return (vals.reshape(*lead, D // QK_BLOCK, QK_BLOCK) * scales.float()[..., None]).reshape(*lead, D)


def _block_values(data: torch.Tensor, fmt: str) -> torch.Tensor:
    """The small integers of a q8_0/q4_0 cache as fp32 ``(B, Hkv, S, D/32, 32)`` (no scales applied)."""
    if fmt == "q8_0":
        vals = data.float()
    else:
        vals = torch.stack(((data & 0xF).float() - 8, (data >> 4).float() - 8), -1).flatten(-2)
    return vals.unflatten(-1, (vals.shape[-1] // QK_BLOCK, QK_BLOCK))


def decode_attention_quantized(q: torch.Tensor, k_data: torch.Tensor, k_scales: torch.Tensor,
                               v_data: torch.Tensor, v_scales: torch.Tensor, fmt: str, *,
                               scale: float | None = None) -> torch.Tensor:
    """Causal attention of a few new queries ``q (B, H, T, D)`` over a quantised KV cache.

    The cache holds S positions (the queries are its last T); formats as in
    :func:`quantize_kv`; the tensors may be strided views. Computed from the blocks, as
    the kernel does, without a dequantised copy of the cache: per 32-value block ``n``,
    ``q·k = sum_n k_scale[n] * (q_n · k_int_n)`` and ``out_n = sum_s (p_s * v_scale[s, n]) *
    v_int[s, n]`` (fp32 arithmetic). Returns ``(B, H, T, D)`` in q's dtype.
    """
    B, H, T, D = q.shape
    Hkv, S = k_data.shape[1], k_data.shape[2]
    G, nb = H // Hkv, D // QK_BLOCK
    qb = q.float().view(B, Hkv, G, T, nb, QK_BLOCK)
    k_int, v_int = _block_values(k_data, fmt), _block_values(v_data, fmt)       # (B, Hkv, S, nb, 32)
    partial = torch.einsum("bkgtnc,bksnc->bkgtsn", qb, k_int)                    # per-block dot products
    scores = (partial * k_scales.float()[:, :, None, None]).sum(-1)            # (B, Hkv, G, T, S)
    scores = scores * (scale if scale is not None else 1.0 / math.sqrt(D))
    qpos = torch.arange(S - T, S, device=q.device)[:, None]
    scores = scores.masked_fill(torch.arange(S, device=q.device)[None, :] > qpos, float("-inf"))
    p = torch.softmax(scores, dim=-1)
    out = torch.einsum("bkgts,bksn,bksnc->bkgtnc", p, v_scales.float(), v_int)
    return out.reshape(B, H, T, D).to(q.dtype)
