"""``MLPModel``: a multilayer perceptron as a MODELS entry (for ``system.classifier``).

    model: {type: MLPModel, d_in: 64, hidden: [128, 128], n_out: 10, activation: gelu, dropout: 0.1}

``forward(x (B, d_in)) -> (B, n_out)``. Built from registered layers (``DenseLayer``,
``DropoutLayer``, ``LinearLayer``) so plans show each one.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import nn

from caramba.engine.errors import ConfigProblem
from caramba.engine.layers.base import NodeConfig
from caramba.engine.layers.dense import Activation
from caramba.engine.layers.problems import Path, check_positive_widths
from caramba.engine.layers.registry import MODELS
from caramba.engine.topology.spec import NodeSpec, build_node, infer_widths, parse_node


@MODELS.register("MLPModel", aliases=("mlp",))
class MLPModel(nn.Module):
    """Dense → (dropout) … → linear."""

    class Config(NodeConfig):
        d_in: int = Field(gt=0, description="input features")
        hidden: list[int] = Field([128], description="hidden widths in order ([]: linear model)")
        n_out: int = Field(gt=0, description="outputs (classes for a classifier)")
        activation: Activation = Field("relu", description="hidden activation")
        dropout: float = Field(0.0, ge=0, lt=1, description="dropout after each hidden layer")

    @classmethod
    def check(cls, config: Config, path: Path, problems: list[ConfigProblem], *,
              allow_python_impl: bool = False) -> NodeSpec | None:
        if not check_positive_widths(config.hidden, path + ("hidden",), problems):
            return None
        layers: list[dict[str, Any]] = []
        width = config.d_in
        for h in config.hidden:
            layers.append({"type": "DenseLayer", "d_in": width, "d_out": h, "activation": config.activation})
            if config.dropout:
                layers.append({"type": "DropoutLayer", "p": config.dropout})
            width = h
        layers.append({"type": "LinearLayer", "d_in": width, "d_out": config.n_out})
        spec = parse_node({"type": "SequentialTopology", "layers": layers}, path + ("<layers>",), problems)
        if spec is not None:
            infer_widths(spec, config.d_in, problems)
        return spec

    @classmethod
    def from_plan(cls, plan: NodeSpec) -> MLPModel:
        return cls(build_node(plan))

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, cache: Any = None) -> torch.Tensor:
        return self.net(x.float())
