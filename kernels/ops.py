"""The operations the engine's layers call. A manifest never names a kernel.

Each function here is the single entry point for one operation; the kernels package
decides (once, at import, from the detected platform) whether the Triton kernel or the
PyTorch reference implements it. Shapes use (B)atch, (H)eads, (T) query length,
(S) key length, (D) head dim, (C) channels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None, eps: float) -> torch.Tensor:
    """RMSNorm over the last dim: x / sqrt(mean(x^2) + eps) * weight. x: (..., C)."""
    xf = x.float()
    y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    y = y.to(x.dtype)
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
    """Rotate pairs (x[..., :D/2], x[..., D/2:]) (the Llama / "rotate-half" layout).

    x: (B, H, T, D) with D even; cos, sin: (T, D/2). Returns a new tensor.
    """
    d2 = x.shape[-1] // 2
    x1, x2 = x[..., :d2], x[..., d2:]
    c, s = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * c - x2 * s, x1 * s + x2 * c), dim=-1)


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool, scale: float | None = None,
    window: int | None = None, dropout_p: float = 0.0,
) -> torch.Tensor:
    """Scaled dot-product attention with GQA/MQA and an optional sliding window.

    q: (B, H, T, D); k, v: (B, Hkv, S, D) with H % Hkv == 0. When T < S (decode), query
    i sits at absolute position S - T + i for the causal/window masks. Returns (B, H, T, D).
    """
    B, H, T, D = q.shape
    Hkv, S = k.shape[1], k.shape[2]
    if H != Hkv:
        k = k.repeat_interleave(H // Hkv, dim=1)
        v = v.repeat_interleave(H // Hkv, dim=1)
    scale = scale if scale is not None else 1.0 / math.sqrt(D)
    if window is None and (not causal or T == S):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal and T > 1, scale=scale, dropout_p=dropout_p)
    qpos = torch.arange(S - T, S, device=q.device)[:, None]
    kpos = torch.arange(S, device=q.device)[None, :]
    allowed = torch.ones(T, S, dtype=torch.bool, device=q.device)
    if causal:
        allowed &= kpos <= qpos
    if window is not None:
        allowed &= kpos > qpos - window
    return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, scale=scale, dropout_p=dropout_p)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Mean token cross-entropy. logits: (N, V), targets: (N,)."""
    return F.cross_entropy(logits.float(), targets, ignore_index=ignore_index)
