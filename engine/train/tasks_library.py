"""Tasks of the issue-3 library: node classification and denoising.

``task.node_classification`` puts validation accuracy over held-out nodes first;
``task.denoising`` the validation noise-prediction loss (lower is better).
"""

from __future__ import annotations

from caramba.engine.train.registry import TASKS
from caramba.engine.train.tasks import TaskComponent, _Empty


@TASKS.register("task.node_classification")
class NodeClassification(TaskComponent):
    """Per-node class prediction on one graph: loss and accuracy (the headline)."""

    Config = _Empty
    primary, higher_is_better, headline = "val_accuracy", True, ("loss", "accuracy")


@TASKS.register("task.denoising")
class Denoising(TaskComponent):
    """Diffusion denoising: noise-prediction MSE."""

    Config = _Empty
    primary, higher_is_better, headline = "val_loss", False, ("loss",)
