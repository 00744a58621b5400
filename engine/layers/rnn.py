"""RNNLayer: LSTM, GRU or Elman RNN over (B, T, d_in), with decode state.

    - {type: RNNLayer, d_in: 64, d_hidden: 64, kind: lstm, num_layers: 1}

Output (B, T, d_hidden · directions). ``torch.nn``'s fused recurrent kernels do the
math. During incremental decoding (a cache passed), the layer keeps its hidden state in
an :class:`RNNState` (created by ``make_layer_cache``), so feeding tokens one at a time
gives the same outputs as the full sequence; bidirectional layers cannot decode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from caramba.engine.layers.base import FieldError, Layer, LayerConfig
from caramba.engine.layers.registry import LAYERS


@dataclass
class RNNState:
    """Hidden state (and LSTM cell state) carried between decode calls."""

    h: Any = None
    length: int = 0


@LAYERS.register("RNNLayer", aliases=("rnn",))
class RNNLayer(Layer):
    """``(B, T, d_in) -> (B, T, d_hidden * (2 if bidirectional else 1))``."""

    class Config(LayerConfig):
        d_in: int = Field(gt=0, description="input features")
        d_hidden: int = Field(gt=0, description="hidden state width")
        kind: Literal["lstm", "gru", "rnn"] = Field("lstm", description="cell type")
        num_layers: int = Field(1, ge=1, description="stacked recurrent layers")
        bidirectional: bool = Field(False, description="also run right-to-left (no decoding then)")
        dropout: float = Field(0.0, ge=0, lt=1, description="dropout between stacked layers")
        nonlinearity: Literal["tanh", "relu"] = Field("tanh", description="kind: rnn only")
        bias: bool = Field(True, description="cell biases")

        width_field: ClassVar[str | None] = "d_in"

        def output_width(self, in_width: int | None) -> int | None:
            return self.d_hidden * (2 if self.bidirectional else 1)

        @model_validator(mode="after")
        def _nonlin(self) -> RNNLayer.Config:
            if self.kind != "rnn" and self.nonlinearity != "tanh":
                raise FieldError("nonlinearity", "nonlinearity applies to kind: rnn only", found=self.nonlinearity,
                                 fix="drop nonlinearity or use kind: rnn")
            return self

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        c = config
        kw = dict(input_size=c.d_in, hidden_size=c.d_hidden, num_layers=c.num_layers, bias=c.bias,
                  batch_first=True, dropout=c.dropout if c.num_layers > 1 else 0.0, bidirectional=c.bidirectional)
        if c.kind == "lstm":
            self.rnn: nn.Module = nn.LSTM(**kw)
        elif c.kind == "gru":
            self.rnn = nn.GRU(**kw)
        else:
            self.rnn = nn.RNN(nonlinearity=c.nonlinearity, **kw)

    def make_layer_cache(self) -> RNNState:
        return RNNState()

    def forward(self, x: torch.Tensor, cache: Any = None) -> torch.Tensor:
        state = cache.for_layer(self) if hasattr(cache, "for_layer") else cache
        if state is None:
            return self.rnn(x)[0]
        if not isinstance(state, RNNState):
            raise TypeError(f"RNNLayer needs an RNNState or a KVCache-like set, got {type(state).__name__}")
        if self.config.bidirectional:
            raise ValueError("a bidirectional RNNLayer cannot decode incrementally (it reads the future)")
        out, h = self.rnn(x, state.h)
        state.h = tuple(t.detach() for t in h) if isinstance(h, tuple) else h.detach()
        state.length += x.shape[1]
        return out
