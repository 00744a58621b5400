"""What every dataset component shares: its config checking, the build context, and the
train/validation split.

A dataset component turns its ``config`` (a mapping from the manifest) into
:class:`DataSplits` — two map-style datasets whose items are dicts of tensors
(``{"input_ids", "target_ids"}`` for language modelling, ``{"x", "y"}`` for supervised
data). Ordering, batching and resumable shuffling live in :mod:`caramba.engine.data.loader`.

Relative paths in a config resolve against the manifest's folder first, then the
workspace root (:meth:`DataContext.resolve_path`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ValidationError

from caramba.engine.errors import CarambaError, ConfigProblem
from caramba.workspace import Workspace


class DataError(CarambaError):
    """A dataset could not be built (missing file, bad shape, unavailable tokenizer)."""


@dataclass
class DataContext:
    """Everything a dataset needs besides its own config."""

    workspace: Workspace
    manifest_dir: Path | None = None
    seed: int = 0
    block_size: int | None = None  # from the run's train config when the data config has none
    val_frac: float | None = None  # from defaults.data.val_frac when the data config has none
    tokenizer: Any = None  # defaults.data.tokenizer (dataset.text uses it when its config has none)

    @property
    def cache_dir(self) -> Path:
        """``<workspace>/.caramba/cache``: token caches and trained tokenizers."""
        d = self.workspace.state_dir / "cache"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def resolve_path(self, path: str, *, what: str) -> Path:
        """A config path: absolute, or relative to the manifest folder, else the workspace."""
        p = Path(path).expanduser()
        candidates = [p] if p.is_absolute() else [
            *( [self.manifest_dir / p] if self.manifest_dir else []), self.workspace.root / p]
        for c in candidates:
            if c.exists():
                return c.resolve()
        tried = ", ".join(dict.fromkeys(str(c) for c in candidates))  # the manifest folder may be the workspace
        raise DataError(f"{what} '{path}' not found (looked at: {tried})",
                        fix="check the path; relative paths resolve against the manifest's folder, then the workspace")


@dataclass
class DataSplits:
    """The train and validation datasets plus facts the model or plan may want."""

    train: torch.utils.data.Dataset
    val: torch.utils.data.Dataset | None
    info: dict[str, Any] = field(default_factory=dict)  # e.g. vocab_size, n_classes, n_tokens


def pydantic_problems(model: type[BaseModel], config: dict[str, Any]) -> list[ConfigProblem]:
    """Turn pydantic validation errors for ``config`` into :class:`ConfigProblem` s."""
    try:
        model.model_validate(config)
    except ValidationError as e:
        out = []
        for err in e.errors():
            loc = tuple(err["loc"])
            if err["type"] == "extra_forbidden":
                known = ", ".join(sorted(model.model_fields))
                out.append(ConfigProblem(loc, f"unknown field '{loc[-1]}'", expected=f"one of: {known}",
                                         fix=f"remove '{loc[-1]}' or rename it to one of: {known}"))
            else:
                found = None if err["type"] == "missing" else repr(err.get("input"))[:60]
                out.append(ConfigProblem(loc, err["msg"], found=found))
        return out
    return []


class Component:
    """Base of datasets, objectives, tasks and trainers: a validated pydantic ``Config``.

    Subclasses set ``Config`` and may override :meth:`semantic_problems` for checks that
    need more than one field.
    """

    Config: ClassVar[type[BaseModel]]

    def __init__(self, config: dict[str, Any] | BaseModel | None = None) -> None:
        if isinstance(config, BaseModel):
            self.config = config
            return
        problems = self.check_config(dict(config or {}))
        if problems:
            lines = "; ".join(f"{'.'.join(map(str, p.path)) or '<config>'}: {p.message}" for p in problems)
            raise CarambaError(f"invalid config for {type(self).__name__}: {lines}",
                               fix="run `caramba validate` on the manifest for the exact locations")
        self.config = self.Config.model_validate(dict(config or {}))

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> list[ConfigProblem]:
        problems = pydantic_problems(cls.Config, config)
        if problems:
            return problems
        return cls.semantic_problems(cls.Config.model_validate(config))

    @classmethod
    def semantic_problems(cls, cfg: Any) -> list[ConfigProblem]:
        return []


class DatasetComponent(Component):
    """A registered dataset: ``build(ctx)`` returns the train/val splits."""

    def build(self, ctx: DataContext) -> DataSplits:  # pragma: no cover - abstract
        raise NotImplementedError


def split_indices(n: int, val_frac: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A deterministic random split of ``range(n)``: the same ``seed`` gives the same split."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    n_val = int(round(n * val_frac))
    if val_frac > 0 and n_val == 0 and n > 1:
        n_val = 1
    return perm[n_val:], perm[:n_val]
