"""``ParallelTopology``: every child sees the same input; outputs are combined.

``combine: sum`` (or ``mean``) needs all children to emit one width; ``concat`` joins
them along the feature dim (output width = the sum of the child widths). A child that
is itself several layers is written as a ``SequentialTopology``.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from caramba.engine.layers.registry import TOPOLOGIES
from caramba.engine.topology.base import ChildWidth, Report, Topology, TopologyConfig


def branch_widths(config: Any, in_width: int | None, child: ChildWidth) -> list[int | None]:
    """Each child's output width when all read the same ``in_width``."""
    return [child(i, in_width) for i in range(len(config.layers))]


@TOPOLOGIES.register("ParallelTopology", aliases=("parallel",))
class ParallelTopology(Topology):
    """``combine(layers[0](x), layers[1](x), …)``."""

    class Config(TopologyConfig):
        combine: Literal["sum", "mean", "concat"] = Field(
            "sum", description="how child outputs merge: sum | mean (equal widths) | concat (widths add up)")

    @classmethod
    def infer_width(cls, config: Any, in_width: int | None, child: ChildWidth, report: Report) -> int | None:
        widths = branch_widths(config, in_width, child)
        if config.combine == "concat":
            return None if any(w is None for w in widths) else sum(w for w in widths if w is not None)
        known = [(i, w) for i, w in enumerate(widths) if w is not None]
        if known:
            first = known[0][1]
            for i, w in known[1:]:
                if w != first:
                    report(("layers", i), f"combine {config.combine} needs equal widths: child 0 emits {first}, "
                           f"child {i} emits {w}", expected=str(first), found=str(w),
                           fix="make every child emit the same width, or use combine: concat")
            return first
        return None

    def forward(self, x: torch.Tensor, cache: Any = None) -> torch.Tensor:
        outs = [layer(x, cache=cache) for layer in self.layers]
        if self.config.combine == "concat":
            return torch.cat(outs, dim=-1)
        total = torch.stack(outs).sum(0)
        return total / len(outs) if self.config.combine == "mean" else total
