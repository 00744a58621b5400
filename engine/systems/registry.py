"""``SYSTEMS``: the registry of trainable systems (``system.language_model``, …).

A system wraps a model behind the batch interface the trainer uses:
``forward(batch: dict[str, Tensor]) -> dict[str, Tensor]``. Its module registers it::

    @SYSTEMS.register("system.language_model")
    class LanguageModelSystem(System): ...
"""

from __future__ import annotations

from typing import Any

from caramba.engine.registry import Registry

SYSTEMS: Registry[Any] = Registry(
    "system",
    modules=(
        "caramba.engine.systems.language_model",
        "caramba.engine.systems.mlp_classifier",
        "caramba.engine.systems.graph",
        "caramba.engine.systems.gcn",
        "caramba.engine.systems.diffusion_denoiser",
        "caramba.engine.systems.classifier",
    ),
)
