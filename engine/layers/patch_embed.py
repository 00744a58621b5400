"""PatchEmbedLayer: images → a sequence of patch tokens (the ViT stem).

An image (B, C, H, W) is cut into non-overlapping ``patch_size`` squares; each patch is
linearly projected to ``d_model`` (a strided convolution does exactly that), a learned
``[CLS]`` token is prepended when ``cls_token`` is set, and learned position embeddings
are added::

    (B, C, H, W) -> (B, N, d_model) with N = (H/p)(W/p) (+1 with cls_token)

Flat inputs (B, C*H*W) — what tabular datasets such as ``dataset.sklearn`` digits yield —
are reshaped to (B, C, H, W) first.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field, model_validator
from torch import nn

from caramba.engine.layers.base import FieldError, Layer, LayerConfig
from caramba.engine.layers.registry import LAYERS


@LAYERS.register("PatchEmbedLayer", aliases=("patch_embed",))
class PatchEmbedLayer(Layer):
    """``(B, C, H, W)`` or ``(B, C*H*W)`` → ``(B, N[+1], d_model)``."""

    class Config(LayerConfig):
        image_size: int = Field(gt=0, description="height = width of the (square) input image")
        patch_size: int = Field(gt=0, description="side of each square patch; must divide image_size")
        in_channels: int = Field(3, gt=0, description="image channels (1 for grey digits)")
        d_model: int = Field(gt=0, description="token width")
        cls_token: bool = Field(True, description="prepend a learned [CLS] token (ViT's classification slot)")

        width_field: ClassVar[str | None] = None

        def output_width(self, in_width: int | None) -> int | None:
            return self.d_model

        @model_validator(mode="after")
        def _divides(self) -> PatchEmbedLayer.Config:
            if self.image_size % self.patch_size:
                raise FieldError("patch_size", f"patch_size {self.patch_size} does not divide image_size "
                                 f"{self.image_size}", expected=f"a divisor of {self.image_size}",
                                 found=str(self.patch_size), fix="pick a patch size that tiles the image")
            return self

        @property
        def n_patches(self) -> int:
            return (self.image_size // self.patch_size) ** 2

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        c = config
        self.proj = nn.Conv2d(c.in_channels, c.d_model, kernel_size=c.patch_size, stride=c.patch_size)
        n = c.n_patches + (1 if c.cls_token else 0)
        self.pos = nn.Parameter(torch.zeros(1, n, c.d_model))
        self.cls = nn.Parameter(torch.zeros(1, 1, c.d_model)) if c.cls_token else None
        if not self.pos.is_meta:
            nn.init.trunc_normal_(self.pos, std=0.02)

    def forward(self, x: torch.Tensor, cache: Any = None) -> torch.Tensor:
        c = self.config
        if x.dim() == 2:
            want = c.in_channels * c.image_size ** 2
            if x.shape[1] != want:
                raise ValueError(f"PatchEmbedLayer: flat input has {x.shape[1]} features, expected "
                                 f"{c.in_channels}x{c.image_size}x{c.image_size} = {want}")
            x = x.view(x.shape[0], c.in_channels, c.image_size, c.image_size)
        tokens = self.proj(x).flatten(2).transpose(1, 2)          # (B, N, d_model)
        if self.cls is not None:
            tokens = torch.cat([self.cls.expand(x.shape[0], -1, -1), tokens], dim=1)
        return tokens + self.pos
