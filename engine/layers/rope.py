"""Rotary position embedding tables (RoPE, Su et al. 2021).

The rotation itself is :func:`caramba.kernels.ops.apply_rope` (rotate-half layout: the
pair for feature ``i`` is ``(i, i + D/2)``). This module only computes the angle tables:
for position ``p`` and pair ``i``, ``θ = p · base^(-2i/D)``; ``cos``/``sin`` have shape
``(T, D/2)`` for positions ``start … start+T-1`` (``start`` > 0 while decoding).
"""

from __future__ import annotations

import torch


def rope_tables(start: int, length: int, head_dim: int, base: float,
                device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cos, sin)``, each ``(length, head_dim // 2)`` fp32, for positions ``start…``."""
    half = head_dim // 2
    inv_freq = base ** (-torch.arange(half, device=device, dtype=torch.float32) * 2.0 / head_dim)  # (D/2,)
    pos = torch.arange(start, start + length, device=device, dtype=torch.float32)  # (T,)
    angles = torch.outer(pos, inv_freq)  # (T, D/2)
    return angles.cos(), angles.sin()
