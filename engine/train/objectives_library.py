"""Objectives of the issue-3 library: masked node classification and denoising.

* ``objective.node_classification_ce`` — cross-entropy over the nodes where
  ``batch["mask"]`` is true (the split's labelled nodes); logits ``(B, N, K)``, labels
  ``(B, N)``. Reports ``accuracy`` over the same nodes.
* ``objective.denoising_mse`` — mean squared error between the system's ``pred`` and its
  ``target`` outputs. A denoiser system samples the timestep and noise itself (they are
  part of the model's training recipe), so the target travels in the outputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from caramba.engine.errors import CarambaError
from caramba.engine.train.objectives import ObjectiveComponent, ObjectiveResult, _batch, _logits
from caramba.engine.train.registry import OBJECTIVES


class NodeCEConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    output_key: str = Field("logits", description="system output with (B, N, K) logits")
    target_key: str = Field("y", description="batch key with (B, N) labels")
    mask_key: str = Field("mask", description="batch key with the (B, N) nodes that count")


@OBJECTIVES.register("objective.node_classification_ce")
class NodeClassificationCE(ObjectiveComponent):
    """Masked cross-entropy over graph nodes, plus accuracy."""

    Config = NodeCEConfig

    def __call__(self, outputs, batch, system=None) -> ObjectiveResult:
        cfg: NodeCEConfig = self.config  # type: ignore[assignment]
        logits = _logits(outputs, cfg.output_key)  # (B, N, K)
        y = _batch(batch, cfg.target_key).long()  # (B, N)
        mask = _batch(batch, cfg.mask_key).bool()  # (B, N)
        if logits.shape[:-1] != y.shape or mask.shape != y.shape:
            raise CarambaError(f"node logits {tuple(logits.shape)}, labels {tuple(y.shape)} and mask "
                               f"{tuple(mask.shape)} do not line up", fix="use a graph dataset with system.gcn/graph")
        if not mask.any():
            raise CarambaError("the batch's node mask selects no node", fix="raise the dataset's val_frac or node count")
        sel, ys = logits[mask], y[mask]  # (M, K), (M,)
        loss = F.cross_entropy(sel.float(), ys)
        acc = (sel.detach().argmax(-1) == ys).float().mean()
        return ObjectiveResult(loss, {"loss": loss.detach(), "accuracy": acc})


class DenoisingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pred_key: str = Field("pred", description="system output: the predicted noise")
    target_key: str = Field("target", description="system output: the noise that was added")


@OBJECTIVES.register("objective.denoising_mse")
class DenoisingMSE(ObjectiveComponent):
    """``mean((pred - target)^2)`` with both tensors taken from the system's outputs."""

    Config = DenoisingConfig

    def __call__(self, outputs, batch, system=None) -> ObjectiveResult:
        cfg: DenoisingConfig = self.config  # type: ignore[assignment]
        pred, target = _logits(outputs, cfg.pred_key), _logits(outputs, cfg.target_key)
        loss = F.mse_loss(pred.float(), target.float())
        return ObjectiveResult(loss, {"loss": loss.detach()})
