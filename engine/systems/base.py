"""``System``: a trainable model behind the batch interface, with config checking.

Contract (docs/internals.md, "Model building")::

    problems = SystemCls.check_config(config)            # list[ConfigProblem], all at once
    system = build_system(spec, device="meta")           # engine/systems/build.py
    out = system(batch)                                   # {"logits": …}
    system.aux_losses()                                   # {"moe_balance": …} or {}
    system.describe()                                     # ModelTree for the plan

A subclass defines a pydantic ``Config``, ``plan(config, path, problems, *,
allow_python_impl)`` (validate + semantic checks, return a plan or None) and
``from_plan(plan)`` (build). ``check_config`` is derived from ``plan``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
from torch import nn

from caramba.engine.errors import ConfigProblem
from caramba.engine.layers.base import NodeConfig
from caramba.engine.layers.problems import Path
from caramba.engine.model.tree import ModelTree, describe_module
from caramba.engine.topology.spec import Problems


class System(nn.Module):
    """Base of registered systems."""

    Config: ClassVar[type[NodeConfig]] = NodeConfig
    #: the registry name, set by :func:`caramba.engine.systems.build.build_system`.
    ref: str = ""

    @classmethod
    def plan(cls, config: Any, path: Path, problems: list[ConfigProblem], *,
             allow_python_impl: bool = False) -> Any | None:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def from_plan(cls, plan: Any) -> System:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def check_config(cls, config: Any, *, allow_python_impl: bool = False) -> list[ConfigProblem]:
        """Every problem in ``config`` (paths relative to it); ``[]`` when it builds.

        ``allow_python_impl``: whether ``impl: python:…`` nodes inside the config are
        permitted (the manifest's ``defaults.runtime.allow_python_impl``).
        """
        problems: list[ConfigProblem] = Problems()
        cls.plan(config if config is not None else {}, (), problems, allow_python_impl=allow_python_impl)
        return list(problems)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def aux_losses(self) -> dict[str, torch.Tensor]:
        """Auxiliary losses of the last forward, gathered from modules that define
        ``aux_losses()`` (e.g. MoE load balance); keys are ``<module path>.<name>``."""
        out: dict[str, torch.Tensor] = {}
        fixed = self.__dict__.get("_aux_modules")
        for name, module in fixed if fixed is not None else self.aux_modules():
            for key, value in module.aux_losses().items():
                out[f"{name}.{key}" if name else key] = value
        return out

    def aux_modules(self) -> list[tuple[str, nn.Module]]:
        """``(path, module)`` of every submodule with an ``aux_losses()`` method."""
        return [(name, m) for name, m in self.named_modules()
                if m is not self and callable(getattr(m, "aux_losses", None))]

    @contextlib.contextmanager
    def fixed_structure(self) -> Iterator[None]:
        """Within a training run the module tree cannot change (the optimizer holds its
        parameters), so :meth:`aux_losses` reads the aux modules collected once here
        instead of walking the whole tree at every step."""
        self.__dict__["_aux_modules"] = self.aux_modules()
        try:
            yield
        finally:
            self.__dict__.pop("_aux_modules", None)

    def describe(self) -> ModelTree:
        """The model tree with parameter counts (works on the meta device)."""
        return describe_module(self, "system", self.ref or type(self).__name__)
