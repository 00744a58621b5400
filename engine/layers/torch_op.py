"""``TorchOpLayer``: a ``torch.nn`` module named by its class name, e.g. ``ReLU``.

``GraphTopology`` lowers ``{op: ReLU, config: {}}`` to ``{type: TorchOpLayer, op: ReLU,
args: {}}``; it may also be written directly. Only classes that live in ``torch.nn`` and
subclass ``nn.Module`` are allowed (a closed set, so a manifest still cannot import
arbitrary code); ``args`` are passed as keyword arguments. The module is called with all
of the node's inputs positionally (``nn.Bilinear`` takes two).

    - type: TorchOpLayer
      op: GELU
      args: {approximate: tanh}
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any

import torch
from pydantic import Field, model_validator
from torch import nn

from caramba.engine.layers.base import FieldError, Layer, LayerConfig
from caramba.engine.layers.registry import LAYERS


def torch_nn_names() -> list[str]:
    """Every public ``torch.nn`` module class name."""
    return sorted(n for n, obj in vars(nn).items()
                  if isinstance(obj, type) and issubclass(obj, nn.Module) and not n.startswith("_"))


@LAYERS.register("TorchOpLayer", aliases=("torch_op",))
class TorchOpLayer(Layer):
    """Wraps ``torch.nn.<op>(**args)``; width is unknown unless the op keeps it (activations)."""

    class Config(LayerConfig):
        op: str = Field(description="a torch.nn class name: ReLU, GELU, Linear, LayerNorm, Bilinear, …")
        args: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the constructor")

        @model_validator(mode="after")
        def _known(self) -> TorchOpLayer.Config:
            names = torch_nn_names()
            if self.op not in names:
                close = difflib.get_close_matches(self.op, names, n=1)
                raise FieldError("op", f"'{self.op}' is not a torch.nn module class", expected="a torch.nn class name",
                                 found=self.op, fix=f"did you mean '{close[0]}'?" if close else "see torch.nn")
            try:
                inspect.signature(getattr(nn, self.op)).bind(**self.args)
            except TypeError as e:
                raise FieldError("args", f"torch.nn.{self.op} does not take these arguments: {e}",
                                 found=repr(self.args)[:60], fix=f"check the signature of torch.nn.{self.op}") from None
            return self

        def output_width(self, in_width: int | None) -> int | None:
            for key in ("out_features", "normalized_shape"):
                if key in self.args and isinstance(self.args[key], int):
                    return self.args[key]
            if self.op in ("Linear", "Bilinear", "LazyLinear", "Embedding", "Conv1d", "Conv2d", "Flatten",
                           "Unflatten", "RNN", "LSTM", "GRU", "MultiheadAttention"):
                return None
            return in_width  # activations, norms, dropout keep the width

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.module = getattr(nn, config.op)(**config.args)

    def forward(self, *inputs: torch.Tensor, cache: Any = None) -> Any:
        return self.module(*inputs)
