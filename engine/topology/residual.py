"""``ResidualTopology``: ``x + f(x)`` where ``f`` is the children in sequence.

The pre-norm transformer block is two of these: ``x + attn(norm(x))`` then
``x + mlp(norm(x))``. The branch must return the width it received, which validation
checks. GPT-2-style initialisers count residual topologies to scale the branches' output
projections by ``1/sqrt(#residual branches)``.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from caramba.engine.layers.registry import TOPOLOGIES
from caramba.engine.topology.base import ChildWidth, Report, Topology, TopologyConfig


@TOPOLOGIES.register("ResidualTopology", aliases=("residual",))
class ResidualTopology(Topology):
    """``x + branch(x)``; the branch keeps the width."""

    class Config(TopologyConfig):
        scale: float = Field(1.0, description="multiplies the branch output before the add (1.0: plain residual)")

    @classmethod
    def infer_width(cls, config: Any, in_width: int | None, child: ChildWidth, report: Report) -> int | None:
        out = super().infer_width(config, in_width, child, report)
        if in_width is not None and out is not None and out != in_width:
            report(("layers",), f"the residual branch changes the width from {in_width} to {out}",
                   expected=f"branch output width {in_width}", found=str(out),
                   fix="make the last layer of the branch output the width it receives")
        return in_width if in_width is not None else out

    def forward(self, x: torch.Tensor, cache: Any = None) -> torch.Tensor:
        h = x
        for layer in self.layers:
            h = layer(h, cache=cache)
        return x + h if self.config.scale == 1.0 else x + self.config.scale * h
