"""``system.classifier``: any MODELS entry that maps ``batch["x"]`` to class logits.

    system:
      ref: system.classifier
      config:
        model: {type: ViTModel, patch: {...}, topology: {...}, n_classes: 10}   # or MLPModel

``forward({"x": (B, …)}) -> {"logits": (B, K)}``.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from caramba.engine.errors import CarambaError, ConfigProblem
from caramba.engine.layers.base import NodeConfig
from caramba.engine.layers.problems import Path, validate
from caramba.engine.model.build import build_model, check_model
from caramba.engine.systems.base import System
from caramba.engine.systems.registry import SYSTEMS


@SYSTEMS.register("system.classifier")
class ClassifierSystem(System):
    """``{"x"} -> {"logits"}`` around a model (ViTModel, MLPModel, …)."""

    class Config(NodeConfig):
        model: dict[str, Any] = Field(description="the model: {type: ViTModel | MLPModel, ...}")

    @classmethod
    def plan(cls, config: Any, path: Path, problems: list[ConfigProblem], *,
             allow_python_impl: bool = False) -> Any:
        cfg = validate(cls.Config, config, path, problems)
        if cfg is None:
            return None
        return check_model(cfg.model, path + ("model",), problems, allow_python_impl=allow_python_impl)

    @classmethod
    def from_plan(cls, plan: Any) -> ClassifierSystem:
        return cls(plan)

    def __init__(self, plan: Any) -> None:
        super().__init__()
        self.model = build_model(plan)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if "x" not in batch:
            raise CarambaError(f"system.classifier needs batch['x'], got keys {sorted(batch)}",
                               fix="use a supervised dataset (dataset.sklearn, dataset.npy_supervised)")
        return {"logits": self.model(batch["x"])}
