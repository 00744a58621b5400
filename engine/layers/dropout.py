"""``DropoutLayer``: zero each feature with probability ``p`` during training.

It has no parameters and accepts any width.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field

from caramba.engine.layers.base import Layer, LayerConfig
from caramba.engine.layers.registry import LAYERS


@LAYERS.register("DropoutLayer", aliases=("dropout",))
class DropoutLayer(Layer):
    """Inverted dropout; the identity in ``eval()`` mode."""

    class Config(LayerConfig):
        p: float = Field(0.1, ge=0.0, lt=1.0, description="drop probability (0.1: GPT-2's value)")

    def forward(self, x: torch.Tensor, cache: Any = None) -> torch.Tensor:
        return F.dropout(x, self.config.p, self.training)
