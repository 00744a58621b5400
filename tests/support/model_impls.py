"""User-style modules referenced as ``impl: python:caramba.tests.support.model_impls:…``."""

from __future__ import annotations

import torch
from torch import nn


class ScaleBy(nn.Module):
    """A plain module (no caramba Config): ``x * factor``; the builder passes kwargs."""

    def __init__(self, factor: float = 2.0) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


class PenaltyLayer(nn.Module):
    """Identity with a learnable scalar and an auxiliary loss, like an MoE balance term."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(3.0))
        self._last: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._last = self.w * x.abs().mean()
        return x

    def aux_losses(self) -> dict[str, torch.Tensor]:
        return {} if self._last is None else {"penalty": self._last}


NOT_A_MODULE = 42
