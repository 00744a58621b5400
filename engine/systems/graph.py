"""``system.graph``: a ``GraphTopology`` over the batch's tensor dict.

Config::

    system:
      ref: system.graph
      config:
        topology: {type: GraphTopology, inputs: [x, adj], layers: [...]}   # nodes: works too
        outputs: {logits: logits}     # system output name -> graph key (default: logits)

``forward(batch)`` runs the graph on a copy of the batch (every batch key is an input
port; the graph's ``inputs`` name the ones it reads) and returns the mapped keys. Widths
flow from the ``inputs`` mapping when it gives them (``inputs: {x: 34, adj: null}``).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from caramba.engine.errors import CarambaError, ConfigProblem
from caramba.engine.layers.base import NodeConfig
from caramba.engine.layers.problems import Path, validate
from caramba.engine.systems.base import System
from caramba.engine.systems.registry import SYSTEMS
from caramba.engine.topology.graph import GraphTopology
from caramba.engine.topology.spec import NodeSpec, build_node, infer_widths, parse_node


def plan_graph(raw: Any, path: Path, problems: list[ConfigProblem], *, allow_python_impl: bool) -> NodeSpec | None:
    """Parse and width-check a GraphTopology node config located at ``path``."""
    spec = parse_node(raw, path, problems, allow_python_impl=allow_python_impl)
    if spec is None:
        return None
    if spec.cls is not GraphTopology:
        problems.append(ConfigProblem(path + ("type",), f"system.graph needs a GraphTopology, found {spec.type}",
                                      expected="GraphTopology", found=spec.type,
                                      fix="write topology: {type: GraphTopology, inputs: [...], layers: [...]}"))
        return None
    infer_widths(spec, None, problems)
    return spec


@SYSTEMS.register("system.graph")
class GraphSystem(System):
    """``batch -> {name: graph[key]}`` around a GraphTopology."""

    class Config(NodeConfig):
        topology: dict[str, Any] = Field(description="a GraphTopology: inputs, output, layers/nodes")
        outputs: dict[str, str] = Field(default_factory=lambda: {"logits": "logits"},
                                        description="system output name -> graph key it takes")

    @classmethod
    def plan(cls, config: Any, path: Path, problems: list[ConfigProblem], *,
             allow_python_impl: bool = False) -> tuple[NodeSpec, dict[str, str]] | None:
        cfg = validate(cls.Config, config, path, problems)
        if cfg is None:
            return None
        spec = plan_graph(cfg.topology, path + ("topology",), problems, allow_python_impl=allow_python_impl)
        if spec is None:
            return None
        written = {k for p in spec.config.ports for k in ([p["out"]] if isinstance(p.get("out"), str)
                                                          else p.get("out") or [])}
        for name, key in cfg.outputs.items():
            if key not in written and key not in spec.config.input_names():
                problems.append(ConfigProblem(path + ("outputs", name), f"no node writes '{key}'",
                                              expected=f"one of {sorted(written)}", found=key,
                                              fix="map the output to a key some node writes"))
        return spec, dict(cfg.outputs)

    @classmethod
    def from_plan(cls, plan: tuple[NodeSpec, dict[str, str]]) -> GraphSystem:
        return cls(*plan)

    def __init__(self, spec: NodeSpec, outputs: dict[str, str]) -> None:
        super().__init__()
        self.graph = build_node(spec)
        self.outputs = outputs

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        missing = [k for k in self.graph.config.input_names() if k not in batch]
        if missing:
            raise CarambaError(f"the graph reads {missing} but the batch has {sorted(batch)}",
                               fix="use a dataset that yields these keys or change the graph's inputs")
        td = self.graph(dict(batch))
        return {name: td[key] for name, key in self.outputs.items()}
