"""Weight initialisers, applied once after a model is built.

``GPT2Initializer`` (Radford et al. 2019): every ``nn.Linear`` and ``nn.Embedding``
weight ~ N(0, std), biases 0; the output projections of residual branches (the
``residual_projections`` a layer names, e.g. attention's ``o_proj``, SwiGLU's ``down``)
get ``std / sqrt(n_residual)`` where ``n_residual`` is the number of residual branches
in the model (``2 · n_layers`` for standard blocks), so the residual stream's variance
does not grow with depth. Norm weights keep their 1/0 init.
"""

from __future__ import annotations

import math
import torch
from pydantic import Field
from torch import nn

from caramba.engine.layers.base import NodeConfig
from caramba.engine.layers.registry import INITIALIZERS


def count_residual_branches(model: nn.Module) -> int:
    """How many ``ResidualTopology`` modules the model holds."""
    from caramba.engine.topology.residual import ResidualTopology

    return sum(isinstance(m, ResidualTopology) for m in model.modules())


@INITIALIZERS.register("GPT2Initializer", aliases=("gpt2",))
class GPT2Initializer:
    """N(0, std) weights, zero biases, residual projections scaled by 1/sqrt(#branches)."""

    class Config(NodeConfig):
        std: float = Field(0.02, gt=0.0, description="weight standard deviation (0.02: GPT-2)")
        scale_residual: bool = Field(True, description="scale residual output projections by 1/sqrt(#branches)")

    def __init__(self, config: Config) -> None:
        self.config = config

    @torch.no_grad()
    def apply(self, model: nn.Module) -> None:
        std = self.config.std
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, 0.0, std)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
        n_res = count_residual_branches(model)
        if not self.config.scale_residual or n_res == 0:
            return
        res_std = std / math.sqrt(n_res)
        for module in model.modules():
            for name in getattr(module, "residual_projections", ()):
                proj = getattr(module, name)
                nn.init.normal_(proj.weight if isinstance(proj, nn.Linear) else proj, 0.0, res_std)
