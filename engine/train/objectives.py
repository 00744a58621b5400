"""Objectives: ``loss, metrics = objective(outputs, batch, system)``.

``outputs`` is what ``System.forward(batch)`` returned (``{"logits": ...}``); metrics are
detached 0-d tensors (turned into floats only when logged, so a CUDA step never waits on
a host sync). The loss that is optimised is ``metrics["loss"]``'s attached twin.

``objective.next_token_ce`` adds the system's auxiliary losses (``System.aux_losses()``,
e.g. an MoE balance loss) times ``aux_weight``; each is logged on its own as
``aux_<name>`` and the plain cross-entropy as ``ce``, so the curves stay comparable
across models with and without auxiliary terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from caramba.engine.data.base import Component
from caramba.engine.errors import CarambaError
from caramba.engine.train.registry import OBJECTIVES
from caramba.kernels import ops


@dataclass
class ObjectiveResult:
    loss: torch.Tensor  # () attached: what backward() runs on
    metrics: dict[str, torch.Tensor]  # detached () tensors: loss and friends


def _logits(outputs: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    if key not in outputs:
        raise CarambaError(f"the system's outputs have no '{key}' (it returned: {', '.join(outputs) or 'nothing'})",
                           fix="pick a system whose forward returns logits, or set the objective's output_key")
    return outputs[key]


def _batch(batch: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    if key not in batch:
        raise CarambaError(f"the batch has no '{key}' (it has: {', '.join(batch)})",
                           fix="use a dataset that yields it, or set the objective's target_key")
    return batch[key]


class ObjectiveComponent(Component):
    """Base of registered objectives."""

    def __call__(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor],
                 system: torch.nn.Module | None = None) -> ObjectiveResult:  # pragma: no cover - abstract
        raise NotImplementedError


class NextTokenConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ignore_index: int = Field(-100, description="target id that contributes no loss")
    aux_weight: float = Field(1.0, ge=0, description="multiplier on the system's auxiliary losses")
    output_key: str = "logits"
    target_key: str = "target_ids"


@OBJECTIVES.register("objective.next_token_ce")
class NextTokenCE(ObjectiveComponent):
    """Mean next-token cross-entropy (``caramba.kernels.ops.cross_entropy``) + aux losses."""

    Config = NextTokenConfig

    def __call__(self, outputs, batch, system=None) -> ObjectiveResult:
        cfg: NextTokenConfig = self.config  # type: ignore[assignment]
        logits = _logits(outputs, cfg.output_key)  # (B, T, V)
        targets = _batch(batch, cfg.target_key)  # (B, T)
        if logits.shape[:-1] != targets.shape:
            raise CarambaError(f"logits {tuple(logits.shape)} do not match targets {tuple(targets.shape)}",
                               fix="a language-model system must return logits of shape (B, T, vocab)")
        ce = ops.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), cfg.ignore_index)
        loss = ce
        metrics = {"ce": ce.detach()}
        aux = system.aux_losses() if system is not None and hasattr(system, "aux_losses") else {}
        for name, value in aux.items():
            metrics[f"aux_{name}"] = value.detach()
            loss = loss + cfg.aux_weight * value
        metrics["loss"] = loss.detach()
        return ObjectiveResult(loss, metrics)


class ClassificationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    output_key: str = "logits"
    target_key: str = "y"


@OBJECTIVES.register("objective.classification_ce")
class ClassificationCE(ObjectiveComponent):
    """Cross-entropy over classes; also reports ``accuracy``."""

    Config = ClassificationConfig

    def __call__(self, outputs, batch, system=None) -> ObjectiveResult:
        cfg: ClassificationConfig = self.config  # type: ignore[assignment]
        logits = _logits(outputs, cfg.output_key)  # (B, K)
        y = _batch(batch, cfg.target_key).long()  # (B,)
        if cfg.label_smoothing:
            loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
        else:
            loss = ops.cross_entropy(logits, y)
        acc = (logits.detach().argmax(-1) == y).float().mean()
        return ObjectiveResult(loss, {"loss": loss.detach(), "accuracy": acc})


class MSEConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    output_key: str = "logits"
    target_key: str = "y"


@OBJECTIVES.register("objective.mse")
class MSE(ObjectiveComponent):
    """Mean squared error between the output and a float target of the same shape."""

    Config = MSEConfig

    def __call__(self, outputs, batch, system=None) -> ObjectiveResult:
        cfg: MSEConfig = self.config  # type: ignore[assignment]
        pred = _logits(outputs, cfg.output_key).float()
        target = _batch(batch, cfg.target_key).float()
        if pred.shape != target.shape and pred.shape == (*target.shape, 1):
            pred = pred.squeeze(-1)
        if pred.shape != target.shape:
            raise CarambaError(f"mse: prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ",
                               fix="make the system's output width match the target")
        loss = F.mse_loss(pred, target)
        return ObjectiveResult(loss, {"loss": loss.detach()})
