"""``BranchingTopology``: children on the same input, concatenated, then fused.

``y = W_fuse · concat(layers[0](x), layers[1](x), …)`` with ``W_fuse`` a learned
projection from the summed child widths to ``d_out`` (default: the input width, so a
branching block can sit inside a ``ResidualTopology``). Inception-style feature fusion.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from pydantic import Field
from torch import nn

from caramba.engine.layers.registry import TOPOLOGIES
from caramba.engine.topology.base import ChildWidth, Report, Topology, TopologyConfig
from caramba.engine.topology.parallel import branch_widths


@TOPOLOGIES.register("BranchingTopology", aliases=("branching",))
class BranchingTopology(Topology):
    """``fuse(concat(branches(x)))``."""

    class Config(TopologyConfig):
        d_out: int | None = Field(None, gt=0, description="fused output width; None = the input width")
        bias: bool = Field(False, description="bias on the fusing projection")

    @classmethod
    def infer_width(cls, config: Any, in_width: int | None, child: ChildWidth, report: Report) -> int | None:
        widths = branch_widths(config, in_width, child)
        unknown = [i for i, w in enumerate(widths) if w is None]
        if unknown:
            report(("layers", unknown[0]), "cannot infer this branch's output width, which the fusing "
                   "projection needs", fix="give the branch a layer that declares its width (d_model/d_in)")
        if config.d_out is None and in_width is None:
            report(("d_out",), "the output width is unknown", fix="set d_out")
        return config.d_out if config.d_out is not None else in_width

    @classmethod
    def build(cls, config: Any, make_children: Callable[[], list[nn.Module]], in_width: int | None,
              child_widths: list[int | None]) -> Topology:
        return cls(config, make_children(), [w or 0 for w in child_widths], config.d_out or in_width or 0)

    def __init__(self, config: Any, children: list[nn.Module], child_widths: list[int], d_out: int) -> None:
        super().__init__(config, children)
        self.fuse = nn.Linear(sum(child_widths), d_out, bias=config.bias)

    def forward(self, x: torch.Tensor, cache: Any = None) -> torch.Tensor:
        return self.fuse(torch.cat([layer(x, cache=cache) for layer in self.layers], dim=-1))
