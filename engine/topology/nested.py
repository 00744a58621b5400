"""``NestedTopology``: its children, in order, ``repeat`` times — the stack of blocks.

``repeat: 12`` builds 12 independent copies (separate weights) of the child sequence.
The manifest lowering usually expands ``repeat`` into explicit children before the
builder sees the config; this class accepts ``repeat`` too so that configs written in
Python work the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import Field
from torch import nn

from caramba.engine.layers.registry import TOPOLOGIES
from caramba.engine.topology.base import ChildWidth, Report, Topology, TopologyConfig


@TOPOLOGIES.register("NestedTopology", aliases=("nested",))
class NestedTopology(Topology):
    """``(layers[0] → … → layers[-1])`` × ``repeat``, each repetition with its own weights."""

    class Config(TopologyConfig):
        repeat: int = Field(1, ge=1, description="how many copies of the child sequence (1: once)")

    @classmethod
    def infer_width(cls, config: Any, in_width: int | None, child: ChildWidth, report: Report) -> int | None:
        width = in_width
        for _ in range(config.repeat):
            for i in range(len(config.layers)):
                width = child(i, width)
        return width

    @classmethod
    def build(cls, config: Any, make_children: Callable[[], list[nn.Module]], in_width: int | None,
              child_widths: list[int | None]) -> Topology:
        children: list[nn.Module] = []
        for _ in range(config.repeat):
            children.extend(make_children())
        return cls(config, children)
