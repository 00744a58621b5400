"""What every topology shares: a config with child ``layers``, width inference, build.

A topology arranges child nodes (layers or other topologies). It is configured like a
layer (``type: ResidualTopology`` plus fields) and its ``layers`` list holds the raw
child configs, which :mod:`caramba.engine.topology.spec` parses recursively.

Three class-level hooks make a topology (defaults: run the children in sequence):

* :meth:`Topology.infer_width` — the output width given the input width; children are
  inferred through the ``child(i, width)`` callback and problems recorded with
  ``report(field_path, message, …)`` relative to the topology's own path.
* :meth:`Topology.build` — construct the module; ``make_children()`` returns a fresh
  list of child modules each call (``NestedTopology`` calls it ``repeat`` times).
* :meth:`forward` — ``forward(x, cache=None)``; the cache set is passed unchanged to
  every child so attention layers find their own layer caches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol

import torch
from pydantic import Field
from torch import nn

from caramba.engine.layers.base import NodeConfig

ChildWidth = Callable[[int, int | None], int | None]


class Report(Protocol):
    def __call__(self, field: tuple[str | int, ...], message: str, *, expected: str | None = None,
                 found: str | None = None, fix: str | None = None) -> None: ...


class TopologyConfig(NodeConfig):
    """Base topology config: the ordered child nodes."""

    # items stay untyped here: parse_node checks each one and reports it at its own path
    layers: list[Any] = Field(
        min_length=1, description="child layers/topologies (each a mapping with a 'type'), applied in order")


class Topology(nn.Module):
    """Base topology: children applied one after the other."""

    Config: ClassVar[type[TopologyConfig]] = TopologyConfig

    def __init__(self, config: TopologyConfig, children: list[nn.Module]) -> None:
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(children)

    @classmethod
    def resolve(cls, raw: Mapping[str, Any]) -> type[Topology]:
        return cls

    @classmethod
    def infer_width(cls, config: Any, in_width: int | None, child: ChildWidth, report: Report) -> int | None:
        width = in_width
        for i in range(len(config.layers)):
            width = child(i, width)
        return width

    @classmethod
    def build(cls, config: Any, make_children: Callable[[], list[nn.Module]], in_width: int | None,
              child_widths: list[int | None]) -> Topology:
        """Construct the module; ``child_widths`` are the inferred child output widths."""
        return cls(config, make_children())

    def forward(self, x: torch.Tensor, cache: Any = None) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, cache=cache)
        return x

    def extra_repr(self) -> str:
        fields = self.config.model_dump(exclude={"layers"})
        return ", ".join(f"{k}={v}" for k, v in fields.items())
