"""``DenseLayer``: a linear map followed by an activation, ``act(x W^T + b)``.

The building block of plain MLPs (``system.mlp_classifier``) and GPT-2-style
feed-forward blocks (``DenseLayer(gelu) → LinearLayer``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from caramba.engine.layers.base import Layer, LayerConfig
from caramba.engine.layers.registry import LAYERS

Activation = Literal["gelu", "gelu_tanh", "relu", "silu", "tanh", "sigmoid", "identity"]

_ACTS = {
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "identity": lambda x: x,
}


def activation(name: str) -> Any:
    """The elementwise function for an activation name of :data:`Activation`."""
    return _ACTS[name]


@LAYERS.register("DenseLayer", aliases=("dense",))
class DenseLayer(Layer):
    """``(…, d_in) -> (…, d_out)`` then the activation."""

    class Config(LayerConfig):
        d_in: int = Field(gt=0, description="input features; must equal the width flowing in")
        d_out: int = Field(gt=0, description="output features")
        activation: Activation = Field("gelu", description="elementwise activation (gelu: GPT-2/BERT)")
        bias: bool = Field(True, description="add a learned bias before the activation")

        width_field: ClassVar[str | None] = "d_in"

        def output_width(self, in_width: int | None) -> int | None:
            return self.d_out

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.linear = nn.Linear(config.d_in, config.d_out, bias=config.bias)
        self._act = activation(config.activation)

    def forward(self, x: torch.Tensor, cache: Any = None) -> torch.Tensor:
        return self._act(self.linear(x))
