"""Embedders: token ids ``(B, T)`` → features ``(B, T, d_model)``.

``type: token`` (``TokenEmbedder``) is a lookup table of ``vocab_size × d_model``,
optionally plus learned absolute positions (GPT-2 style; leave ``max_positions`` unset
when the attention layers use RoPE).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from caramba.engine.errors import CarambaError
from caramba.engine.layers.base import NodeConfig
from caramba.engine.layers.registry import EMBEDDERS


class EmbedderConfig(NodeConfig):
    """Fields every embedder has: the vocabulary and the width it emits."""

    vocab_size: int = Field(gt=0, description="number of token ids; the LM head's d_out must match")
    d_model: int = Field(gt=0, description="embedding width, the width flowing into the topology")


@EMBEDDERS.register("TokenEmbedder", aliases=("token",))
class TokenEmbedder(nn.Module):
    """``token[ids] (+ position[start:start+T])``, then dropout."""

    class Config(EmbedderConfig):
        max_positions: int | None = Field(None, gt=0, description="learned absolute positions up to this length; "
                                          "None = none (use RoPE in attention)")
        dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout on the embeddings (0: modern LMs)")

    tree_leaf: ClassVar[bool] = True

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
        self.token = nn.Embedding(config.vocab_size, config.d_model)
        self.position = nn.Embedding(config.max_positions, config.d_model) if config.max_positions else None

    def forward(self, input_ids: torch.Tensor, start: int = 0) -> torch.Tensor:
        x = self.token(input_ids)  # (B, T, C)
        if self.position is not None:
            T = input_ids.shape[1]
            if start + T > self.config.max_positions:  # type: ignore[operator]
                raise CarambaError(f"sequence of {start + T} positions exceeds the embedder's max_positions "
                                   f"{self.config.max_positions}",
                                   fix="raise embedder.max_positions or use a shorter block_size")
            x = x + self.position(torch.arange(start, start + T, device=input_ids.device))
        return F.dropout(x, self.config.dropout, self.training)
