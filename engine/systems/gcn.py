"""``system.gcn``: a stack of graph convolutions for node classification.

Config::

    system:
      ref: system.gcn
      config: {d_in: 34, hidden: [16], n_classes: 4, kind: gcn, dropout: 0.5}

``forward({"x": (B, N, d_in), "adj": (B, N, N)}) -> {"logits": (B, N, n_classes)}``.
It is sugar for ``system.graph``: the config expands to a ``GraphTopology`` of
``GraphConvLayer`` → ReLU → Dropout … → ``GraphConvLayer``, so plans show the layers and
the same checks apply. For ``kind: gat`` the hidden layers use ``heads`` (concatenated)
and the output layer one head.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from caramba.engine.errors import ConfigProblem
from caramba.engine.layers.base import NodeConfig
from caramba.engine.layers.problems import Path, check_positive_widths, validate
from caramba.engine.systems.graph import GraphSystem, plan_graph
from caramba.engine.systems.registry import SYSTEMS
from caramba.engine.topology.spec import NodeSpec


@SYSTEMS.register("system.gcn")
class GCNSystem(GraphSystem):
    """GCN/GAT node classifier over ``x`` and ``adj``."""

    class Config(NodeConfig):  # type: ignore[assignment]
        d_in: int = Field(gt=0, description="node feature width")
        hidden: list[int] = Field([16], description="hidden widths ([16]: Kipf & Welling's Cora model)")
        n_classes: int = Field(ge=2, description="classes per node")
        kind: Literal["gcn", "gat"] = Field("gcn", description="graph convolution kind")
        heads: int = Field(1, gt=0, description="gat heads in hidden layers")
        dropout: float = Field(0.5, ge=0, lt=1, description="dropout between layers (0.5 as in the GCN paper)")
        add_self_loops: bool = Field(True, description="nodes also receive their own features")

    @classmethod
    def graph_config(cls, cfg: Config) -> dict[str, Any]:
        nodes: list[dict[str, Any]] = []
        key, width = "x", cfg.d_in
        for i, h in enumerate([*cfg.hidden, cfg.n_classes]):
            last = i == len(cfg.hidden)
            heads = 1 if (last or cfg.kind == "gcn") else cfg.heads
            nodes.append({"id": f"conv{i}", "in": [key, "adj"], "out": f"h{i}", "type": "GraphConvLayer",
                          "d_in": width, "d_out": h, "kind": cfg.kind, "heads": heads,
                          "add_self_loops": cfg.add_self_loops})
            key, width = f"h{i}", h
            if not last:
                nodes.append({"id": f"act{i}", "in": key, "out": f"a{i}", "op": "ReLU"})
                key = f"a{i}"
                if cfg.dropout > 0:
                    nodes.append({"id": f"drop{i}", "in": key, "out": f"d{i}", "type": "DropoutLayer",
                                  "p": cfg.dropout})
                    key = f"d{i}"
        nodes[-1]["out"] = "logits"
        return {"type": "GraphTopology", "inputs": {"x": cfg.d_in, "adj": None}, "output": "logits", "nodes": nodes}

    @classmethod
    def plan(cls, config: Any, path: Path, problems: list[ConfigProblem], *,
             allow_python_impl: bool = False) -> tuple[NodeSpec, dict[str, str]] | None:
        cfg = validate(cls.Config, config, path, problems)
        if cfg is None:
            return None
        check_positive_widths(cfg.hidden, path + ("hidden",), problems)
        if cfg.kind == "gat":
            for i, h in enumerate(cfg.hidden):
                if h % cfg.heads:
                    problems.append(ConfigProblem(path + ("hidden", i), f"gat hidden width {h} is not divisible by "
                                                  f"heads {cfg.heads}", expected=f"a multiple of {cfg.heads}",
                                                  found=str(h), fix="change the width or heads"))
        if problems:
            return None
        spec = plan_graph(cls.graph_config(cfg), path + ("<graph>",), problems, allow_python_impl=False)
        return None if spec is None else (spec, {"logits": "logits"})
