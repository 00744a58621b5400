"""Registries of the training family: ``OBJECTIVES``, ``TRAINERS``, ``TASKS``.

* an **objective** turns a system's outputs and the batch into a scalar loss plus metrics
  (``objective.next_token_ce``, ``objective.classification_ce``, ``objective.mse``);
* a **task** says what kind of problem a target is and which metrics matter for it
  (``task.language_modeling``: loss and perplexity; ``task.classification``: accuracy);
* a **trainer** runs the optimisation loop for one ``runs[]`` entry (``trainer.standard``,
  alias ``trainer.train``).

Each entry carries a pydantic ``Config`` and ``check_config(config) -> list[ConfigProblem]``
(see :class:`caramba.engine.data.base.Component`).
"""

from __future__ import annotations

from caramba.engine.registry import Registry

OBJECTIVES: Registry = Registry("objective", modules=("caramba.engine.train.objectives",
                                                   "caramba.engine.train.objectives_library"))
TASKS: Registry = Registry("task", modules=("caramba.engine.train.tasks", "caramba.engine.train.tasks_library"))
TRAINERS: Registry = Registry("trainer", modules=("caramba.engine.train.trainer", "caramba.engine.train.upcycle"))
