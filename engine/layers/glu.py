"""``GLULayer``: a gated feed-forward block with a choice of gate activation.

``y = W_out · (act(x W_gate) ⊙ x W_up)`` (Dauphin et al. 2017; Shazeer 2020). The
``gelu`` (GEGLU) and ``silu`` (SwiGLU) gates run through :mod:`caramba.kernels.ops`
(``geglu``, ``swiglu``); ``sigmoid`` is the original GLU and ``relu`` ReGLU.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from caramba.engine.layers.base import Layer, LayerConfig
from caramba.engine.layers.registry import LAYERS
from caramba.kernels import ops


def gate(kind: str, g: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """``act(g) ⊙ up`` for the named activation."""
    if kind == "gelu":
        return ops.geglu(g, up)
    if kind == "silu":
        return ops.swiglu(g, up)
    if kind == "sigmoid":
        return torch.sigmoid(g) * up
    if kind == "relu":
        return torch.relu(g) * up
    raise ValueError(f"unknown GLU activation {kind!r}")  # unreachable: the config is a Literal


@LAYERS.register("GLULayer", aliases=("glu",))
class GLULayer(Layer):
    """Gated MLP ``(B, T, d_model) -> (B, T, d_model)``."""

    class Config(LayerConfig):
        d_model: int = Field(gt=0, description="model width; must equal the width flowing in")
        d_ff: int = Field(gt=0, description="hidden (gated) width")
        activation: Literal["gelu", "silu", "sigmoid", "relu"] = Field(
            "gelu", description="gate activation (gelu: GEGLU, the strongest in Shazeer 2020)")
        bias: bool = Field(False, description="biases on the projections")

        width_field: ClassVar[str | None] = "d_model"

    residual_projections: ClassVar[tuple[str, ...]] = ("out",)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.gate_up = nn.Linear(config.d_model, 2 * config.d_ff, bias=config.bias)
        self.out = nn.Linear(config.d_ff, config.d_model, bias=config.bias)

    def forward(self, x: torch.Tensor, cache: Any = None) -> torch.Tensor:
        g, up = self.gate_up(x).chunk(2, dim=-1)  # each (B, T, d_ff)
        return self.out(gate(self.config.activation, g, up))
