"""What every layer shares: a typed config, the width protocol and the forward signature.

A layer is one ``nn.Module`` subclass with a pydantic ``Config`` class attribute::

    @LAYERS.register("RMSNormLayer", aliases=("rms_norm",))
    class RMSNormLayer(Layer):
        class Config(LayerConfig):
            d_model: int = Field(gt=0, description="width of the normalised features")
            width_field: ClassVar[str | None] = "d_model"
        def __init__(self, config: Config) -> None: ...
        def forward(self, x, cache=None): ...

**Width protocol.** Validation infers the feature width (the last dim) flowing through
the topology without building anything. A config declares which field names its input
width (``width_field``: ``d_model`` or ``d_in``; ``None`` = any width passes) and what
width it emits (:meth:`LayerConfig.output_width`). :meth:`LayerConfig.infer_width`
combines the two and raises :class:`FieldError` when the declared input width disagrees
with what flows in. ``None`` widths mean "unknown" and are never an error.

**Forward.** Every layer and topology is called as ``module(x, cache=cache)`` with
``x: (B, T, C)``; ``cache`` is ``None`` in training and a cache set
(:mod:`caramba.engine.layers.cache`) during incremental decoding. Layers without state
ignore it.

**Semantic checks** that span fields (``n_heads`` divides ``d_model``) are pydantic
``model_validator``\\ s that raise :class:`FieldError`, so the problem is reported at
the offending field (``…layers[1].n_heads``), not at the layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn


class FieldError(ValueError):
    """A config problem located at one field of the config that raised it.

    Raised from pydantic validators (pydantic keeps the original exception, so the
    problem translator recovers ``field``, ``expected``, ``found`` and ``fix``) and from
    :meth:`LayerConfig.infer_width`.
    """

    def __init__(self, field: str | None, message: str, *, expected: str | None = None,
                 found: str | None = None, fix: str | None = None) -> None:
        self.field, self.message = field, message
        self.expected, self.found, self.fix = expected, found, fix
        super().__init__(message)


class NodeConfig(BaseModel):
    """Base of every layer/topology config: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class LayerConfig(NodeConfig):
    """Base config of a layer, carrying the width protocol."""

    #: the field that declares the input width (``None``: the layer accepts any width).
    width_field: ClassVar[str | None] = None

    def input_width(self) -> int | None:
        """The input width this config declares, or ``None`` when it accepts any."""
        return None if self.width_field is None else getattr(self, self.width_field)

    def output_width(self, in_width: int | None) -> int | None:
        """The width this layer emits given ``in_width`` (default: unchanged)."""
        return in_width

    def infer_width(self, in_width: int | None) -> int | None:
        """The output width for ``in_width``; raises :class:`FieldError` on a mismatch."""
        declared = self.input_width()
        if declared is not None and in_width is not None and declared != in_width:
            raise FieldError(
                self.width_field, f"{self.width_field} is {declared} but the incoming width is {in_width}",
                expected=str(in_width), found=str(declared),
                fix=f"set {self.width_field}: {in_width} (or change the layer before it)",
            )
        return self.output_width(declared if declared is not None else in_width)


class Layer(nn.Module):
    """Base of registered layers: keeps the validated config and the registry name."""

    Config: ClassVar[type[LayerConfig]] = LayerConfig

    def __init__(self, config: LayerConfig) -> None:
        super().__init__()
        self.config = config

    @classmethod
    def resolve(cls, raw: Mapping[str, Any]) -> type[Layer]:
        """The class that implements this raw config (default: ``cls``).

        A layer whose config selects an implementation (``AttentionLayer.mode``)
        overrides this; the builder then validates ``raw`` against the returned class's
        ``Config`` and instantiates that class.
        """
        return cls

    def forward(self, x: torch.Tensor, cache: Any = None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.model_dump().items())
