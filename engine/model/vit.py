"""``ViTModel``: a Vision Transformer classifier (Dosovitskiy et al., 2021).

Config::

    model:
      type: ViTModel
      patch: {image_size: 8, patch_size: 2, in_channels: 1, d_model: 64}   # PatchEmbedLayer
      topology: {type: StackedTopology, layers: [... non-causal blocks ..., final norm]}
      n_classes: 10
      pool: cls          # cls: the [CLS] token; mean: average of all tokens

``forward(x) -> (B, n_classes)``: patch tokens → topology → pooled → linear head. Blocks
must use ``AttentionLayer`` with ``causal: false`` (every patch sees every patch); RoPE
is unnecessary because the patch embedder adds learned positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from caramba.engine.errors import ConfigProblem
from caramba.engine.layers.base import NodeConfig
from caramba.engine.layers.patch_embed import PatchEmbedLayer
from caramba.engine.layers.problems import Path, validate
from caramba.engine.layers.registry import MODELS
from caramba.engine.topology.spec import NodeSpec, build_node, infer_widths, parse_node


@dataclass
class ViTPlan:
    config: Any
    patch: Any
    topology: NodeSpec


@MODELS.register("ViTModel", aliases=("vit",))
class ViTModel(nn.Module):
    """Patch embedding → transformer blocks → pool → classifier."""

    class Config(NodeConfig):
        patch: dict[str, Any] = Field(description="PatchEmbedLayer fields: image_size, patch_size, in_channels, d_model")
        topology: dict[str, Any] = Field(description="the blocks; must keep the width d_model")
        n_classes: int = Field(ge=2, description="classes (logits per image)")
        pool: Literal["cls", "mean"] = Field("cls", description="cls token (needs patch.cls_token) or token mean")

    @classmethod
    def check(cls, config: Config, path: Path, problems: list[ConfigProblem], *,
              allow_python_impl: bool = False) -> ViTPlan | None:
        patch = validate(PatchEmbedLayer.Config, config.patch, path + ("patch",), problems)
        topo = parse_node(config.topology, path + ("topology",), problems, allow_python_impl=allow_python_impl)
        if topo is None or patch is None:
            return None
        out = infer_widths(topo, patch.d_model, problems)
        if out is not None and out != patch.d_model:
            problems.append(ConfigProblem(path + ("topology",), f"the blocks emit width {out}, not d_model "
                                          f"{patch.d_model}", expected=str(patch.d_model), found=str(out),
                                          fix="keep the residual width; the classifier head is added by ViTModel"))
        if config.pool == "cls" and not patch.cls_token:
            problems.append(ConfigProblem(path + ("pool",), "pool: cls needs patch.cls_token: true",
                                          expected="mean", found="cls", fix="set pool: mean or patch.cls_token: true"))
        return ViTPlan(config, patch, topo)

    @classmethod
    def from_plan(cls, plan: ViTPlan) -> ViTModel:
        return cls(plan.config, PatchEmbedLayer(plan.patch), build_node(plan.topology))

    def __init__(self, config: Config, patch: PatchEmbedLayer, topology: nn.Module) -> None:
        super().__init__()
        self.config = config
        self.patch = patch
        self.topology = topology
        self.head = nn.Linear(patch.config.d_model, config.n_classes)

    def forward(self, x: torch.Tensor, cache: Any = None) -> torch.Tensor:
        h = self.topology(self.patch(x.float()), cache=None)       # (B, N, d_model)
        pooled = h[:, 0] if self.config.pool == "cls" else h.mean(1)  # (B, d_model)
        return self.head(pooled)                                      # (B, n_classes)
