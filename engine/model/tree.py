"""``ModelTree``: a model's structure with parameter counts, for plans and tools.

:func:`describe_module` walks a built module (works on the meta device: counting needs
shapes, not storage). Registered layers and embedders are leaves; topologies, models and
systems show their children. Parameters shared between nodes (tied embeddings) are
counted once per subtree, so the root total is the true number of trainable values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from caramba.engine.layers.base import Layer


@dataclass
class ModelTree:
    """One node: its attribute name, registered type, unique parameter count, children."""

    name: str
    type: str
    params: int
    children: list[ModelTree] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "params": self.params,
                "children": [c.to_dict() for c in self.children]}

    def signature(self) -> tuple[Any, ...]:
        """Structure without names: equal signatures mean identical repeated blocks."""
        return (self.type, self.params, tuple(c.signature() for c in self.children))

    def walk(self) -> Iterator[ModelTree]:
        yield self
        for c in self.children:
            yield from c.walk()


def _type_names() -> dict[type, str]:
    from caramba.engine.layers.registry import EMBEDDERS, LAYERS, MODELS, TOPOLOGIES

    names: dict[type, str] = {}
    for reg in (LAYERS, TOPOLOGIES, MODELS, EMBEDDERS):
        for name, cls in reg.items():
            names.setdefault(cls, name)
    return names


def count_params(module: nn.Module) -> int:
    """Unique parameters (shared ones once) under ``module``."""
    return sum(p.numel() for p in module.parameters())  # .parameters() already de-duplicates


def _children(module: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    for name, child in module.named_children():
        if isinstance(child, (nn.ModuleList, nn.Sequential)):
            for i, sub in enumerate(child):
                yield f"{name}[{i}]", sub
        else:
            yield name, child


def describe_module(module: nn.Module, name: str = "model", type_name: str | None = None,
                    _names: dict[type, str] | None = None) -> ModelTree:
    """The :class:`ModelTree` of ``module``."""
    names = _names if _names is not None else _type_names()
    typ = type_name or getattr(module, "tree_type", None) or names.get(type(module), type(module).__name__)
    node = ModelTree(name, typ, count_params(module))
    if isinstance(module, Layer) or getattr(module, "tree_leaf", False):
        return node
    for child_name, child in _children(module):
        if type(child) in names or count_params(child):
            node.children.append(describe_module(child, child_name, None, names))
    return node
