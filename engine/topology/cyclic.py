"""``CyclicTopology``: run the children ``cycles`` times, sharing weights by default.

    - type: CyclicTopology
      cycles: 4             # x -> f(x) -> f(f(x)) -> ...
      share_weights: true   # one set of weights reused every cycle (Universal-Transformer style)
      layers: [...]

With ``share_weights: false`` each cycle gets its own copy of the children (then it is
``NestedTopology(repeat)``). The children must map the width back to itself when
``cycles > 1``; otherwise the width problem is reported at ``layers``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from pydantic import Field
from torch import nn

from caramba.engine.layers.registry import TOPOLOGIES
from caramba.engine.topology.base import ChildWidth, Report, Topology, TopologyConfig


@TOPOLOGIES.register("CyclicTopology", aliases=("cyclic",))
class CyclicTopology(Topology):
    """``x`` through the children ``cycles`` times."""

    class Config(TopologyConfig):
        cycles: int = Field(2, ge=1, description="how many passes through the children")
        share_weights: bool = Field(True, description="reuse one set of child weights in every cycle")

    @classmethod
    def infer_width(cls, config: Any, in_width: int | None, child: ChildWidth, report: Report) -> int | None:
        width = in_width
        for i in range(len(config.layers)):
            width = child(i, width)
        if config.cycles > 1 and in_width is not None and width is not None and width != in_width:
            report(("layers",), f"a cycle maps width {in_width} to {width}; cycling needs the same width",
                   expected=str(in_width), found=str(width), fix="make the children width-preserving or cycles: 1")
        return width

    @classmethod
    def build(cls, config: Any, make_children: Callable[[], list[nn.Module]], in_width: int | None,
              child_widths: list[int | None]) -> CyclicTopology:
        copies = 1 if config.share_weights else config.cycles
        return cls(config, [m for _ in range(copies) for m in make_children()])

    def forward(self, x: torch.Tensor, cache: Any = None) -> torch.Tensor:
        n = len(self.config.layers)
        for c in range(self.config.cycles):
            block = self.layers[:n] if self.config.share_weights else self.layers[c * n:(c + 1) * n]
            for layer in block:
                x = layer(x, cache=cache)
        return x
