"""``system.language_model``: a token model that maps ``input_ids`` to next-token logits.

Config::

    system:
      ref: system.language_model
      config:
        model: {type: TransformerModel, embedder: {...}, topology: {...}}
        init: GPT2Initializer          # or {type: GPT2Initializer, std: 0.02}; null = PyTorch's

``forward({"input_ids": (B, T)}) -> {"logits": (B, T, V)}``. Pass ``cache=KVCache()``
for prefill + incremental decode (:mod:`caramba.engine.layers.cache`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from pydantic import Field

from caramba.engine.errors import CarambaError, ConfigProblem
from caramba.engine.layers.base import NodeConfig
from caramba.engine.layers.problems import Path, validate
from caramba.engine.layers.registry import INITIALIZERS
from caramba.engine.model.build import build_model, check_model
from caramba.engine.model.typed import parse_typed
from caramba.engine.systems.base import System
from caramba.engine.systems.registry import SYSTEMS


@dataclass
class LanguageModelPlan:
    model: tuple[Any, Any]
    init: tuple[Any, Any] | None
    init_from: str | None = None


@SYSTEMS.register("system.language_model")
class LanguageModelSystem(System):
    """``{"input_ids"} -> {"logits"}`` around a MODELS entry."""

    class Config(NodeConfig):
        model: dict[str, Any] = Field(description="the model: {type: TransformerModel, embedder, topology, ...}")
        init: dict[str, Any] | str | None = Field(
            "GPT2Initializer", description="weight initializer (GPT2Initializer: N(0, 0.02), scaled residual "
            "projections); null keeps PyTorch's defaults")
        init_from: str | None = Field(
            None, description="local Hugging Face Llama directory (config.json + safetensors) loaded after init; "
            "not read on the meta device (dry-run)")

    @classmethod
    def plan(cls, config: Any, path: Path, problems: list[ConfigProblem], *,
             allow_python_impl: bool = False) -> LanguageModelPlan | None:
        cfg = validate(cls.Config, config, path, problems)
        if cfg is None:
            return None
        model = check_model(cfg.model, path + ("model",), problems, allow_python_impl=allow_python_impl)
        init = parse_typed(INITIALIZERS, cfg.init, path + ("init",), problems) if cfg.init is not None else None
        if model is None or (cfg.init is not None and init is None):
            return None
        return LanguageModelPlan(model, init, cfg.init_from)

    @classmethod
    def from_plan(cls, plan: LanguageModelPlan) -> LanguageModelSystem:
        return cls(plan)

    def __init__(self, plan: LanguageModelPlan) -> None:
        super().__init__()
        self.model = build_model(plan.model)
        if plan.init is not None:
            init_cls, init_cfg = plan.init
            init_cls(init_cfg).apply(self.model)
        if plan.init_from is not None and not next(self.model.parameters()).is_meta:
            from caramba.engine.model.hf_llama import load_hf_llama
            load_hf_llama(self.model, plan.init_from)

    def forward(self, batch: dict[str, torch.Tensor], cache: Any = None) -> dict[str, torch.Tensor]:
        if "input_ids" not in batch:
            raise CarambaError(f"system.language_model needs batch['input_ids'], got keys {sorted(batch)}",
                               fix="use a token dataset (dataset.tokens, dataset.text, dataset.random_tokens)")
        return {"logits": self.model(batch["input_ids"], cache=cache)}
