"""RoPE frequencies and cos/sin tables, with optional Llama-3 or linear scaling.

Rotary position embedding rotates each pair of features (rotate-half layout, see
``caramba.kernels.ops.apply_rope``) by the angle ``position * inv_freq[i]`` with
``inv_freq[i] = base ** (-2i / dim)``. Scaling stretches the usable context by lowering
frequencies, and lives entirely in the tables (the rotation kernel never changes):

* ``llama3`` (Llama 3.1+): wavelengths longer than ``original_max_position_embeddings /
  low_freq_factor`` get ``inv_freq / factor``, wavelengths shorter than ``… /
  high_freq_factor`` are kept, and the band in between is interpolated smoothly.
* ``linear`` (position interpolation, Chen et al. 2023): every frequency ``/ factor``.

The manifest spelling is ``rope_scaling: {type: llama3, factor, low_freq_factor,
high_freq_factor, original_max_position_embeddings}`` (HF's ``rope_scaling`` with
``type`` for ``rope_type``); :meth:`RopeScaling.from_hf` reads a Hugging Face config.
Every attention mode (standard, gqa, decoupled) uses these same functions::

    cos, sin = scaled_rope_tables(positions, dim=64, base=500000.0, scaling=RopeScaling(factor=8))
    q = ops.apply_rope(q, cos, sin)
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from caramba.engine.layers.base import FieldError

#: scaling rules implemented here (HF ``rope_type`` values with the same meaning).
SUPPORTED_SCALING = ("llama3", "linear")
_LLAMA3_ONLY = ("low_freq_factor", "high_freq_factor", "original_max_position_embeddings")


class RopeScaling(BaseModel):
    """RoPE frequency scaling (field names follow HF's ``rope_scaling``)."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field("llama3", description="the scaling rule: llama3 | linear")
    factor: float = Field(8.0, gt=0, description="how much longer the target context is")
    low_freq_factor: float = Field(1.0, gt=0, description="llama3: wavelengths above old_ctx/low_freq_factor get "
                                   "1/factor")
    high_freq_factor: float = Field(4.0, gt=0, description="llama3: wavelengths below old_ctx/high_freq_factor "
                                    "are kept")
    original_max_position_embeddings: int = Field(8192, gt=0, description="llama3: context length the base model "
                                                  "was trained on")

    @model_validator(mode="after")
    def _check(self) -> RopeScaling:
        if self.type not in SUPPORTED_SCALING:
            raise FieldError("type", f"RoPE scaling type '{self.type}' is not supported",
                             expected=" | ".join(SUPPORTED_SCALING), found=self.type,
                             fix="use type: llama3 or type: linear, or drop rope_scaling for unscaled RoPE")
        if self.type == "linear":
            extra = sorted(set(_LLAMA3_ONLY) & self.model_fields_set)
            if extra:
                raise FieldError(extra[0], f"{', '.join(extra)} only apply to type: llama3, not linear",
                                 expected="type: linear with factor only", found=", ".join(extra),
                                 fix="remove them, or set type: llama3")
        elif self.high_freq_factor < self.low_freq_factor:
            raise FieldError("high_freq_factor", f"high_freq_factor ({self.high_freq_factor}) is below "
                             f"low_freq_factor ({self.low_freq_factor})",
                             expected=f">= {self.low_freq_factor}", found=str(self.high_freq_factor),
                             fix="Llama 3.1 uses low_freq_factor: 1.0, high_freq_factor: 4.0")
        return self

    @classmethod
    def from_hf(cls, params: dict[str, Any] | None) -> RopeScaling | None:
        """From HF's ``rope_scaling`` / ``rope_parameters`` mapping; ``None`` when unscaled.

        Raises :class:`FieldError` naming the type for rules this module lacks (e.g.
        ``dynamic``, ``yarn``, ``longrope``). Keys HF keeps beside the rule
        (``rope_theta``, ``partial_rotary_factor`` …) are not part of the scaling.
        """
        params = dict(params or {})
        kind = params.pop("rope_type", None) or params.pop("type", None) or "default"
        params.pop("type", None)
        if kind == "default":
            return None
        if kind not in SUPPORTED_SCALING:
            raise FieldError("rope_scaling", f"RoPE scaling type '{kind}' is not supported",
                             expected=" | ".join(SUPPORTED_SCALING), found=str(kind),
                             fix="only llama3 and linear scaled checkpoints can be loaded")
        keys = ("factor",) + (_LLAMA3_ONLY if kind == "llama3" else ())
        return cls(type=kind, **{k: params[k] for k in keys if k in params})

    def to_hf(self) -> dict[str, Any]:
        """The HF ``rope_scaling`` mapping (``rope_type`` and ``type`` both written)."""
        out: dict[str, Any] = {"rope_type": self.type, "type": self.type, "factor": self.factor}
        if self.type == "llama3":
            out.update({k: getattr(self, k) for k in _LLAMA3_ONLY})
        return out


def inv_frequencies(dim: int, base: float, scaling: RopeScaling | None = None) -> torch.Tensor:
    """The ``dim/2`` fp32 rotation frequencies, scaled when ``scaling`` is given."""
    inv = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    if scaling is None:
        return inv.float()
    if scaling.type == "linear":
        return (inv / scaling.factor).float()
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
    """cos, sin of shape (T, dim/2) fp32 for integer ``positions`` (T,)."""
    inv = inv_frequencies(dim, base, scaling).to(positions.device)
    angles = positions.float()[:, None] * inv[None, :]  # (T, dim/2)
    return angles.cos(), angles.sin()
