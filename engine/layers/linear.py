"""``LinearLayer``: an affine map ``y = x W^T + b`` from ``d_in`` to ``d_out`` features.

The usual language-model head (``d_in: d_model``, ``d_out: vocab_size``); the layer that
``TransformerModel.tied_embeddings`` ties to the token embedding.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import nn

from caramba.engine.layers.base import Layer, LayerConfig
from caramba.engine.layers.registry import LAYERS


@LAYERS.register("LinearLayer", aliases=("linear",))
class LinearLayer(Layer):
    """Affine projection ``(B, T, d_in) -> (B, T, d_out)``."""

    class Config(LayerConfig):
        d_in: int = Field(gt=0, description="input features; must equal the width flowing in")
        d_out: int = Field(gt=0, description="output features")
        bias: bool = Field(True, description="add a learned bias (torch.nn.Linear's default)")

        width_field: ClassVar[str | None] = "d_in"

        def output_width(self, in_width: int | None) -> int | None:
            return self.d_out

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.linear = nn.Linear(config.d_in, config.d_out, bias=config.bias)

    def forward(self, x: torch.Tensor, cache: Any = None) -> torch.Tensor:
        return self.linear(x)  # (B, T, d_out)
