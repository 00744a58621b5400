"""Normalisation layers: ``RMSNormLayer`` and ``LayerNormLayer``.

Both normalise over the last dim and delegate the math to :mod:`caramba.kernels.ops`
(``rms_norm``, ``layer_norm``), which runs a fused Triton kernel on CUDA and the PyTorch
reference on CPU. The two live in one file because they differ only in the op they call
and whether they carry a bias.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import nn

from caramba.engine.layers.base import Layer, LayerConfig
from caramba.engine.layers.registry import LAYERS
from caramba.kernels import ops


@LAYERS.register("RMSNormLayer", aliases=("rms_norm",))
class RMSNormLayer(Layer):
    """``x / sqrt(mean(x²) + eps) · weight`` over the last dim (Llama's pre-norm)."""

    class Config(LayerConfig):
        d_model: int = Field(gt=0, description="features normalised; must equal the width flowing in")
        eps: float = Field(1e-5, gt=0.0, description="added to the mean square (1e-5: Llama's value)")
        weight: bool = Field(True, description="learn a per-feature scale (initialised to 1)")

        width_field: ClassVar[str | None] = "d_model"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.weight = nn.Parameter(torch.ones(config.d_model)) if config.weight else None

    def forward(self, x: torch.Tensor, cache: Any = None) -> torch.Tensor:
        return ops.rms_norm(x, self.weight, self.config.eps)


@LAYERS.register("LayerNormLayer", aliases=("layer_norm",))
class LayerNormLayer(Layer):
    """``(x - mean) / sqrt(var + eps) · weight + bias`` over the last dim (GPT-2's norm)."""

    class Config(LayerConfig):
        d_model: int = Field(gt=0, description="features normalised; must equal the width flowing in")
        eps: float = Field(1e-5, gt=0.0, description="added to the variance (1e-5: PyTorch's default)")
        bias: bool = Field(True, description="learn a per-feature shift (GPT-2 has one)")

        width_field: ClassVar[str | None] = "d_model"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.weight = nn.Parameter(torch.ones(config.d_model))
        self.bias = nn.Parameter(torch.zeros(config.d_model)) if config.bias else None

    def forward(self, x: torch.Tensor, cache: Any = None) -> torch.Tensor:
        return ops.layer_norm(x, self.weight, self.bias, self.config.eps)
