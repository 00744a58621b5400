"""Rotary position embedding tables (RoPE, Su et al. 2021), cached per layer.

The rotation itself is :func:`caramba.kernels.ops.apply_rope` (rotate-half layout: the
pair for feature ``i`` is ``(i, i + D/2)``). This module only computes the angle tables:
for position ``p`` and pair ``i``, ``θ = p · inv_freq[i]`` with ``inv_freq[i] =
base^(-2i/D)``, optionally scaled (llama3 / linear, :mod:`caramba.engine.layers.rope_tables`);
``cos``/``sin`` have shape ``(T, D/2)`` for positions ``start … start+T-1`` (``start`` > 0
while decoding).
"""

from __future__ import annotations

import torch

from caramba.engine.layers.rope_tables import RopeScaling, inv_frequencies


def rope_tables(start: int, length: int, head_dim: int, base: float, device: torch.device | str,
                scaling: RopeScaling | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cos, sin)``, each ``(length, head_dim // 2)`` fp32, for positions ``start…``."""
    inv_freq = inv_frequencies(head_dim, base, scaling).to(device)  # (D/2,)
    pos = torch.arange(start, start + length, device=device, dtype=torch.float32)  # (T,)
    angles = torch.outer(pos, inv_freq)  # (T, D/2)
    return angles.cos(), angles.sin()


class RopeCache:
    """Tables for positions ``0 … n-1`` computed once and sliced per call.

    Training calls with the same length every step and decoding one position at a
    time; both then cost a slice instead of six small kernels per layer. The tables
    grow (by doubling) when a longer position range is asked for and move with the
    device of the input. Values are identical to :func:`rope_tables` for the same range
    and ``scaling``. While ``torch.compile`` traces, nothing is cached (see :meth:`tables`).
    """

    def __init__(self, head_dim: int, base: float, scaling: RopeScaling | None = None) -> None:
        self.head_dim, self.base, self.scaling = head_dim, base, scaling
        self._cos: torch.Tensor | None = None
        self._sin: torch.Tensor | None = None

    def tables(self, start: int, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        end = start + length
        if torch.compiler.is_compiling():
            # Inside a compiled graph the tables are part of the graph (one fused kernel) and
            # never stored on ``self``: a tensor kept from a graph run would live in that
            # graph's memory, which a CUDA-graph replay (compile_mode: reduce-overhead) reuses.
            return rope_tables(start, length, self.head_dim, self.base, device, self.scaling)
        cached = self._cos
        if cached is None or cached.device != device or cached.shape[0] < end:
            have = cached.shape[0] if cached is not None and cached.device == device else 0
            self._cos, self._sin = rope_tables(0, max(end, 2 * have), self.head_dim, self.base, device, self.scaling)
        assert self._cos is not None and self._sin is not None
        return self._cos[start:end], self._sin[start:end]
