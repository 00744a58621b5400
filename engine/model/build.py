"""Resolve and check a ``model:`` mapping against MODELS, then build it.

``check_model`` appends every problem (paths under ``path``) and returns a plan;
``build_model`` turns that plan into a module. Systems that hold a model use both.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from caramba.engine.errors import ConfigProblem
from caramba.engine.layers.problems import Path
from caramba.engine.layers.registry import MODELS
from caramba.engine.model.typed import parse_typed


def check_model(raw: Any, path: Path, problems: list[ConfigProblem], *,
                allow_python_impl: bool = False) -> tuple[Any, Any] | None:
    """``(model class, plan)`` for a ``{type: TransformerModel, …}`` mapping, or None."""
    parsed = parse_typed(MODELS, raw, path, problems)
    if parsed is None:
        return None
    cls, config = parsed
    plan = cls.check(config, path, problems, allow_python_impl=allow_python_impl)
    return None if plan is None else (cls, plan)


def build_model(checked: tuple[Any, Any]) -> nn.Module:
    cls, plan = checked
    return cls.from_plan(plan)
