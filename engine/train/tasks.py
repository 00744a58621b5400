"""Tasks: what kind of problem a target solves, and which metrics matter for it.

A task adds derived metrics (perplexity from a language-modelling loss) and names the
headline metric that artifacts put first and that ``results.json`` reports as
``primary``. ``higher_is_better`` tells readers (and agents) which way is good.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict

from caramba.engine.data.base import Component
from caramba.engine.train.registry import TASKS


class TaskComponent(Component):
    """Base of registered tasks."""

    #: the metric a reader looks at first, e.g. "val_loss" or "val_accuracy"
    primary: str = "val_loss"
    higher_is_better: bool = False
    #: metrics shown in tables and plots, in order (prefixed by train_/val_ where logged)
    headline: tuple[str, ...] = ("loss",)

    def derive(self, metrics: dict[str, float]) -> dict[str, float]:
        """Add derived metrics to a flat ``{name: value}`` mapping (returns a new dict)."""
        return dict(metrics)


class _Empty(BaseModel):
    model_config = ConfigDict(extra="forbid")


@TASKS.register("task.language_modeling")
class LanguageModeling(TaskComponent):
    """Next-token prediction: loss (nats/token) and perplexity."""

    Config = _Empty
    primary, higher_is_better, headline = "val_loss", False, ("loss", "ppl")

    def derive(self, metrics: dict[str, float]) -> dict[str, float]:
        out = dict(metrics)
        for prefix in ("", "train_", "val_"):
            nll = metrics.get(prefix + "ce", metrics.get(prefix + "loss"))  # ce excludes aux losses
            if nll is not None:
                out[prefix + "ppl"] = math.exp(min(nll, 50.0))
        return out


@TASKS.register("task.classification")
class Classification(TaskComponent):
    """Class prediction: loss and accuracy (the headline)."""

    Config = _Empty
    primary, higher_is_better, headline = "val_accuracy", True, ("loss", "accuracy")


@TASKS.register("task.regression")
class Regression(TaskComponent):
    """Real-valued prediction: mean squared error."""

    Config = _Empty
    primary, higher_is_better, headline = "val_loss", False, ("loss",)
