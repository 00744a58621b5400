"""RoPE cos/sin tables, with optional Llama-3 frequency scaling.

Rotary position embedding rotates each pair of features (rotate-half layout, see
``caramba.kernels.ops.apply_rope``) by the angle ``position * inv_freq[i]`` with
``inv_freq[i] = base ** (-2i / dim)``. Llama 3 stretches the context by rescaling the
low frequencies (long wavelengths) by ``1/factor``, keeps the high frequencies, and
interpolates smoothly in between; the scaling lives entirely in the tables.

    cos, sin = scaled_rope_tables(positions, dim=64, base=500000.0, scaling=RopeScaling(factor=8))
    q = ops.apply_rope(q, cos, sin)
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field


class RopeScaling(BaseModel):
    """Llama-3 style RoPE frequency scaling (field names follow HF's ``rope_scaling``)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["llama3"] = Field("llama3", description="the scaling rule (only llama3 is defined)")
    factor: float = Field(8.0, gt=0, description="how much longer the target context is")
    low_freq_factor: float = Field(1.0, gt=0, description="wavelengths above old_ctx/low_freq_factor get 1/factor")
    high_freq_factor: float = Field(4.0, gt=0, description="wavelengths below old_ctx/high_freq_factor are kept")
    original_max_position_embeddings: int = Field(8192, gt=0, description="context length the base model was trained on")


def inv_frequencies(dim: int, base: float, scaling: RopeScaling | None = None) -> torch.Tensor:
    """The ``dim/2`` rotation frequencies, Llama-3-scaled when ``scaling`` is given."""
    inv = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    if scaling is None:
        return inv.float()
    old = scaling.original_max_position_embeddings
    low_wavelen = old / scaling.low_freq_factor
    high_wavelen = old / scaling.high_freq_factor
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > low_wavelen, inv / scaling.factor, inv)
    if scaling.high_freq_factor != scaling.low_freq_factor:
        smooth = (old / wavelen - scaling.low_freq_factor) / (scaling.high_freq_factor - scaling.low_freq_factor)
        blended = (1 - smooth) * scaled / scaling.factor + smooth * scaled
        medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
        scaled = torch.where(medium, blended, scaled)
    return scaled.float()


def scaled_rope_tables(positions: torch.Tensor, dim: int, base: float,
                scaling: RopeScaling | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape (T, dim/2) for integer ``positions`` (T,)."""
    inv = inv_frequencies(dim, base, scaling).to(positions.device)
    angles = positions.float()[:, None] * inv[None, :]  # (T, dim/2)
    return angles.cos(), angles.sin()
