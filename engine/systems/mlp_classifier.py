"""``system.mlp_classifier``: a multilayer perceptron over feature vectors.

Config::

    system:
      ref: system.mlp_classifier
      config: {d_in: 64, hidden: [128, 64], n_classes: 10, dropout: 0.1, activation: relu}

``forward({"x": (B, d_in)}) -> {"logits": (B, n_classes)}``. The network is built from
registered layers (``DenseLayer`` → ``DropoutLayer`` … → ``LinearLayer``) inside a
``SequentialTopology``, so it shows up in plans like any other model.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from caramba.engine.errors import CarambaError, ConfigProblem
from caramba.engine.layers.base import NodeConfig
from caramba.engine.layers.dense import Activation
from caramba.engine.layers.problems import Path, check_positive_widths, validate
from caramba.engine.systems.base import System
from caramba.engine.systems.registry import SYSTEMS
from caramba.engine.topology.spec import NodeSpec, build_node, infer_widths, parse_node


@SYSTEMS.register("system.mlp_classifier")
class MLPClassifierSystem(System):
    """``{"x"} -> {"logits"}``: dense layers with dropout, then a linear classifier."""

    class Config(NodeConfig):
        d_in: int = Field(gt=0, description="input features per example")
        hidden: list[int] = Field([128], description="hidden layer widths, in order ([]: a linear classifier)")
        n_classes: int = Field(ge=2, description="number of classes (logits per example)")
        dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout after each hidden layer (0: none)")
        activation: Activation = Field("relu", description="hidden activation (relu: the classic MLP choice)")

    @classmethod
    def layers_config(cls, cfg: Config) -> dict[str, Any]:
        """The equivalent ``SequentialTopology`` node config."""
        layers: list[dict[str, Any]] = []
        width = cfg.d_in
        for h in cfg.hidden:
            layers.append({"type": "DenseLayer", "d_in": width, "d_out": h, "activation": cfg.activation})
            if cfg.dropout > 0:
                layers.append({"type": "DropoutLayer", "p": cfg.dropout})
            width = h
        layers.append({"type": "LinearLayer", "d_in": width, "d_out": cfg.n_classes})
        return {"type": "SequentialTopology", "layers": layers}

    @classmethod
    def plan(cls, config: Any, path: Path, problems: list[ConfigProblem], *,
             allow_python_impl: bool = False) -> NodeSpec | None:
        cfg = validate(cls.Config, config, path, problems)
        if cfg is None:
            return None
        if not check_positive_widths(cfg.hidden, path + ("hidden",), problems):
            return None
        spec = parse_node(cls.layers_config(cfg), path + ("<layers>",), problems)
        if spec is not None:
            infer_widths(spec, cfg.d_in, problems)
        return spec

    @classmethod
    def from_plan(cls, plan: NodeSpec) -> MLPClassifierSystem:
        return cls(plan)

    def __init__(self, plan: NodeSpec) -> None:
        super().__init__()
        self.net = build_node(plan)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if "x" not in batch:
            raise CarambaError(f"system.mlp_classifier needs batch['x'], got keys {sorted(batch)}",
                               fix="use a supervised dataset (dataset.sklearn, dataset.npy_supervised)")
        x = batch["x"]
        return {"logits": self.net(x.float() if not x.is_floating_point() else x)}
