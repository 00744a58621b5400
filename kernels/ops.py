"""The operations the engine's layers call. A manifest never names a kernel.

Each function here is the single entry point for one operation. It asks the dispatch
table (:mod:`caramba.kernels.dispatch`) for the implementation that serves tensors on
its input's device — the Triton kernel on CUDA, the PyTorch reference
(:mod:`caramba.kernels.reference`, which also defines the semantics) on CPU, MPS and the
meta device — and calls it. The table is logged once when this module is imported.
Shapes use (B)atch, (H)eads, (T) query length, (S) key length, (D) head dim,
(C) channels, (N) rows, (V) vocabulary.
"""

from __future__ import annotations

import torch

from caramba.kernels import reference
from caramba.kernels.dispatch import log_table, resolve_all, route
from caramba.kernels.platform import PLATFORM

log_table()
if PLATFORM.triton_on_device:
    resolve_all()


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None, eps: float) -> torch.Tensor:
    """RMSNorm over the last dim: x / sqrt(mean(x^2) + eps) * weight. x: (..., C)."""
    return route("rms_norm", x.device.type)(x, weight, eps)


def layer_norm(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float) -> torch.Tensor:
    """LayerNorm over the last dim. x: (..., C)."""
    return route("layer_norm", x.device.type)(x, weight, bias, eps)


def swiglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """silu(gate) * up, elementwise."""
    return route("swiglu", gate.device.type)(gate, up)


def geglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """gelu(gate, tanh approximation) * up, elementwise."""
    return route("geglu", gate.device.type)(gate, up)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[..., i], x[..., R/2 + i]) for i < R/2 (the Llama "rotate-half" layout).

    x: (B, H, T, D); cos, sin: (T, R/2) with R <= D even (R < D: partial rotary, the
    remaining dims pass through). Returns a new tensor. The tables get no gradient.
    """
    return route("apply_rope", x.device.type)(x, cos, sin)


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool, scale: float | None = None,
    window: int | None = None, dropout_p: float = 0.0,
) -> torch.Tensor:
    """Scaled dot-product attention with GQA/MQA and an optional sliding window.

    q: (B, H, T, D); k, v: (B, Hkv, S, D) with H % Hkv == 0. When T < S (decode), query
    i sits at absolute position S - T + i for the causal/window masks. Returns (B, H, T, D).
    ``dropout_p > 0`` (training-time attention dropout) always runs the reference (SDPA):
    the flash kernel has no dropout; the dispatch table says so.
    """
    if dropout_p > 0.0:
        return reference.attention(q, k, v, causal=causal, scale=scale, window=window, dropout_p=dropout_p)
    return route("attention", q.device.type)(q, k, v, causal=causal, scale=scale, window=window)


def decoupled_attention(
    q_sem: torch.Tensor, k_sem: torch.Tensor, q_geo: torch.Tensor, k_geo: torch.Tensor, v: torch.Tensor, *,
    causal: bool, scale: float | None = None, window: int | None = None,
) -> torch.Tensor:
    """DBA attention: softmax((q_sem·k_sem + q_geo·k_geo) * scale) @ v.

    q_sem (B, H, T, Ds), k_sem (B, Hkv, S, Ds), q_geo (B, H, T, Dg) and k_geo
    (B, Hkv, S, Dg) with RoPE already applied to the geometric parts, v (B, Hkv, S, Dv);
    ``scale`` defaults to 1/sqrt(Ds + Dg). Returns (B, H, T, Dv).
    """
    return route("decoupled_attention", q_sem.device.type)(q_sem, k_sem, q_geo, k_geo, v, causal=causal,
                                                           scale=scale, window=window)


def decode_attention_quantized(q: torch.Tensor, k_data: torch.Tensor, k_scales: torch.Tensor,
                               v_data: torch.Tensor, v_scales: torch.Tensor, fmt: str, *,
                               scale: float | None = None) -> torch.Tensor:
    """Causal decode attention of q (B, H, T<=16, D) over a q8_0/q4_0 KV cache of S positions.

    Cache layout: :func:`caramba.kernels.reference.quantize_kv` (build it with that function).
    Inference only (no gradient). Returns (B, H, T, D).
    """
    return route("decode_attention_quantized", q.device.type)(q, k_data, k_scales, v_data, v_scales, fmt,
                                                              scale=scale)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Mean token cross-entropy over targets != ignore_index. logits: (N, V), targets: (N,)."""
    return route("cross_entropy", logits.device.type)(logits, targets, ignore_index)


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                         ignore_index: int = -100) -> torch.Tensor:
    """cross_entropy(hidden @ weight.T, targets) without materialising the (N, V) logits.

    hidden: (N, C), weight: (V, C) (the LM head / tied embedding), targets: (N,).
    """
    return route("linear_cross_entropy", hidden.device.type)(hidden, weight, targets, ignore_index)


def selective_scan(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
    D: torch.Tensor | None = None, *, z: torch.Tensor | None = None, delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False, state: torch.Tensor | None = None, return_state: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Mamba selective scan (S6) over a sequence, optionally gated by silu(z).

    u, delta, z: (Bt, L, Dm); A: (Dm, N); B, C: (Bt, L, N); D, delta_bias: (Dm,);
    ``state``: the state before the first token (Bt, Dm, N), zeros when None.
    delta -> softplus(delta + delta_bias) (or just + bias); h_t = exp(delta_t A) h_{t-1}
    + delta_t u_t B_t; out_t = (<C_t, h_t> + D u_t) * silu(z_t). Returns out in u's dtype,
    and with ``return_state`` also the final state (Bt, Dm, N) in fp32. Definition:
    :mod:`caramba.kernels.scan_ref`.
    """
    return route("selective_scan", u.device.type)(u, delta, A, B, C, D, z=z, delta_bias=delta_bias,
                                                  delta_softplus=delta_softplus, state=state,
                                                  return_state=return_state)
