"""``SwiGLULayer``: the gated feed-forward block of Llama/PaLM.

``y = W_down · (silu(x W_gate) ⊙ x W_up)``; gate and up are one fused ``Linear`` of
width ``2 · d_ff`` (one matmul instead of two). The gating is
:func:`caramba.kernels.ops.swiglu`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import nn

from caramba.engine.layers.base import Layer, LayerConfig
from caramba.engine.layers.registry import LAYERS
from caramba.kernels import ops


def default_ff_width(d_model: int, multiple_of: int = 64) -> int:
    """Llama's rule: 2/3 of a 4× MLP (same parameter count), rounded up to ``multiple_of``."""
    hidden = int(2 * 4 * d_model / 3)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


@LAYERS.register("SwiGLULayer", aliases=("swiglu",))
class SwiGLULayer(Layer):
    """Gated MLP ``(B, T, d_model) -> (B, T, d_model)`` with a SiLU gate."""

    class Config(LayerConfig):
        d_model: int = Field(gt=0, description="model width; must equal the width flowing in")
        d_ff: int | None = Field(None, gt=0, description="hidden width; None = 8/3·d_model rounded up to 64 (Llama)")
        bias: bool = Field(False, description="biases on the projections (False: Llama)")

        width_field: ClassVar[str | None] = "d_model"

        @property
        def hidden(self) -> int:
            return self.d_ff if self.d_ff is not None else default_ff_width(self.d_model)

    residual_projections: ClassVar[tuple[str, ...]] = ("down",)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.gate_up = nn.Linear(config.d_model, 2 * config.hidden, bias=config.bias)
        self.down = nn.Linear(config.hidden, config.d_model, bias=config.bias)

    def forward(self, x: torch.Tensor, cache: Any = None) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)  # each (B, T, d_ff)
        return self.down(ops.swiglu(gate, up))
