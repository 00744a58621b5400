"""Conv2dLayer: a 2-D convolution over (B, C, H, W) images, with an optional activation.

    - {type: Conv2dLayer, in_channels: 1, out_channels: 16, kernel_size: 3, padding: 1, activation: relu}

Channels are dim 1, not the last dim, so this layer declares no feature width for the
topology's width checks (``width_field: None``); ``in_channels`` is checked at run time.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from caramba.engine.layers.base import Layer, LayerConfig
from caramba.engine.layers.registry import LAYERS

_ACT = {"none": lambda x: x, "relu": F.relu, "gelu": F.gelu, "silu": F.silu, "tanh": torch.tanh}


@LAYERS.register("Conv2dLayer", aliases=("conv2d",))
class Conv2dLayer(Layer):
    """``(B, in_channels, H, W) -> (B, out_channels, H', W')``."""

    class Config(LayerConfig):
        in_channels: int = Field(gt=0, description="input channels")
        out_channels: int = Field(gt=0, description="output channels (filters)")
        kernel_size: int = Field(3, gt=0, description="square kernel side (3: the VGG/ResNet default)")
        stride: int = Field(1, gt=0, description="step between windows")
        padding: int | Literal["same"] = Field(0, description="zero padding per side, or 'same' (stride 1 only)")
        dilation: int = Field(1, gt=0, description="spacing between kernel taps")
        groups: int = Field(1, gt=0, description="1: dense; in_channels: depthwise")
        bias: bool = Field(True, description="learned per-filter bias")
        activation: Literal["none", "relu", "gelu", "silu", "tanh"] = Field("none", description="applied after the conv")

        width_field: ClassVar[str | None] = None

        def output_width(self, in_width: int | None) -> int | None:
            return None  # the last dim of an image is its width in pixels, not features

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        c = config
        self.conv = nn.Conv2d(c.in_channels, c.out_channels, c.kernel_size, stride=c.stride, padding=c.padding,
                              dilation=c.dilation, groups=c.groups, bias=c.bias)

    def forward(self, x: torch.Tensor, cache: Any = None) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"Conv2dLayer expects (B, {self.config.in_channels}, H, W); got {tuple(x.shape)}")
        return _ACT[self.config.activation](self.conv(x))
