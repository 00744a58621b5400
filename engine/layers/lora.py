"""LoRA: low-rank adapters on a frozen linear map (Hu et al., 2021).

A pretrained ``W`` (d_out × d_in) stays frozen; training learns ``A`` (r × d_in) and
``B`` (d_out × r) with r ≪ min(d_in, d_out)::

    y = x W^T + b + (alpha / r) * dropout(x) A^T B^T

``B`` starts at zero, so the adapted model is exactly the pretrained one at step 0; ``A``
starts Kaiming-uniform. After training, :meth:`LoRALinear.merge` folds the update into
``W`` (``W += (alpha/r) B A``) and the adapter disappears at inference cost zero.

Two entry points:

* :class:`LoRALinear` wraps an existing ``nn.Linear`` (``caramba.engine.train.peft``
  uses it to adapt any built model from ``train.peft`` in a manifest);
* :class:`LoRALinearLayer` is the registered layer (``type: LoRALinearLayer``) that
  owns its base linear, for manifests that write adapters explicitly.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from caramba.engine.layers.base import Layer, LayerConfig
from caramba.engine.layers.registry import LAYERS


class LoRALinear(nn.Module):
    """``base(x) + scale * B(A(dropout(x)))`` around an existing ``nn.Linear`` ``base``."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        if r <= 0:
            raise ValueError(f"LoRA rank r must be positive, got {r}")
        self.base = base
        self.r, self.alpha, self.dropout = r, alpha, dropout
        self.scale = alpha / r
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, device=w.device, dtype=w.dtype))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, device=w.device, dtype=w.dtype))
        if not self.lora_A.is_meta:
            nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @property
    def weight(self) -> torch.Tensor:
        """The base weight (so code that reads ``.weight`` of a linear keeps working)."""
        return self.base.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    def delta_weight(self) -> torch.Tensor:
        """The weight update the adapter represents: (alpha / r) B A, shape (d_out, d_in)."""
        return (self.lora_B @ self.lora_A) * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.dropout(x, self.dropout, self.training)
        return self.base(x) + (h @ self.lora_A.T @ self.lora_B.T) * self.scale  # (..., d_out)

    @torch.no_grad()
    def merge(self) -> nn.Linear:
        """Fold the adapter into the base weight and return the plain linear."""
        self.base.weight += self.delta_weight().to(self.base.weight.dtype)
        return self.base

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, dropout={self.dropout}"


@LAYERS.register("LoRALinearLayer", aliases=("lora_linear",))
class LoRALinearLayer(Layer):
    """A ``LinearLayer`` with a LoRA adapter: ``(B, T, d_in) -> (B, T, d_out)``.

    Only the adapter trains when ``freeze_base`` (the default): the point of LoRA.
    """

    class Config(LayerConfig):
        d_in: int = Field(gt=0, description="input features; must equal the width flowing in")
        d_out: int = Field(gt=0, description="output features")
        r: int = Field(8, gt=0, description="adapter rank (8: the usual starting point)")
        alpha: float = Field(16.0, gt=0, description="update scale numerator; the update is scaled by alpha / r")
        dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout on the adapter input")
        bias: bool = Field(True, description="bias on the base linear")
        freeze_base: bool = Field(True, description="freeze the base weight (train the adapter only)")

        width_field: ClassVar[str | None] = "d_in"

        def output_width(self, in_width: int | None) -> int | None:
            return self.d_out

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        c = config
        self.lora = LoRALinear(nn.Linear(c.d_in, c.d_out, bias=c.bias), c.r, c.alpha, c.dropout)
        if c.freeze_base:
            self.lora.base.requires_grad_(False)

    def forward(self, x: torch.Tensor, cache: Any = None) -> torch.Tensor:
        return self.lora(x)
