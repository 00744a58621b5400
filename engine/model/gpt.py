"""``GPTModel``: the manifest reference's name for a decoder-only ``TransformerModel``.

Identical to :class:`~caramba.engine.model.transformer.TransformerModel` (token embedder →
topology → logits); registered under its own name so manifests written for the original
guide (``type: GPTModel``) build unchanged.
"""

from __future__ import annotations

from caramba.engine.layers.registry import MODELS
from caramba.engine.model.transformer import TransformerModel


@MODELS.register("GPTModel", aliases=("gpt",))
class GPTModel(TransformerModel):
    """A decoder-only transformer language model (same config as TransformerModel)."""
