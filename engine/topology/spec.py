"""From raw node configs to a checked tree to modules: parse → infer widths → build.

A *node* is one mapping inside a topology: ``{type: AttentionLayer, d_model: 512, …}``.

1. :func:`parse_node` resolves ``type`` in LAYERS/TOPOLOGIES (aliases allowed), lets the
   class pick its implementation (``resolve``), validates the remaining keys against its
   pydantic ``Config`` and recurses into ``layers``. It never stops at the first problem:
   every problem is appended to the caller's list with its path.
2. :func:`infer_widths` walks the tree with a known (or unknown, ``None``) input width and
   records each node's input/output width, reporting mismatches at the exact field.
3. :func:`build_node` instantiates the modules (under ``torch.device("meta")`` nothing is
   allocated). Only call it on a tree that parsed and inferred without problems.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from caramba.engine.errors import ConfigProblem
from caramba.engine.layers.base import FieldError, LayerConfig
from caramba.engine.layers.problems import Path, validate
from caramba.engine.layers.python_impl import load_python_impl
from caramba.engine.layers.registry import node_class
from caramba.engine.registry import UnknownComponent
from caramba.engine.topology.base import Topology


@dataclass
class NodeSpec:
    """One parsed node: its canonical type, class, validated config and children."""

    type: str
    cls: Any
    config: Any
    path: Path
    children: list[NodeSpec] = field(default_factory=list)
    in_width: int | None = None
    out_width: int | None = None

    @property
    def is_topology(self) -> bool:
        return isinstance(self.cls, type) and issubclass(self.cls, Topology)

    def last_leaf(self) -> NodeSpec:
        """The node that produces this subtree's output last (e.g. the model's head)."""
        return self.children[-1].last_leaf() if self.is_topology and self.children else self


class Problems(list[ConfigProblem]):
    """A problem list that ignores exact duplicates (repeated blocks report once)."""

    def append(self, p: ConfigProblem) -> None:  # type: ignore[override]
        if p not in self:
            super().append(p)

    def extend(self, ps: Any) -> None:  # type: ignore[override]
        for p in ps:
            self.append(p)


def _field_problem(path: Path, e: FieldError) -> ConfigProblem:
    return ConfigProblem(path + ((e.field,) if e.field else ()), e.message, e.expected, e.found, e.fix)


def parse_node(raw: Any, path: Path, problems: list[ConfigProblem], *, allow_python_impl: bool = False) -> NodeSpec | None:
    """Parse one node (recursively); problems are appended, ``None`` returned on failure."""
    if not isinstance(raw, dict):
        problems.append(ConfigProblem(path, f"a layer must be a mapping, found {type(raw).__name__}",
                                      expected="mapping with a 'type'", found=repr(raw)[:60],
                                      fix="write the layer as {type: SomeLayer, ...}"))
        return None
    rest = {k: v for k, v in raw.items() if k not in ("type", "impl")}
    if "impl" in raw:
        return _parse_python_node(raw, rest, path, problems, allow_python_impl)
    name = raw.get("type")
    if not isinstance(name, str):
        problems.append(ConfigProblem(path + ("type",), "layer has no 'type'", expected="a layer or topology name",
                                      found=repr(name) if name is not None else None,
                                      fix="add type: (see `caramba layers` for the catalog)"))
        return None
    try:
        canonical, base_cls = node_class(name)
        cls = base_cls.resolve(raw)
    except UnknownComponent as e:
        problems.append(ConfigProblem(path + ("type",), e.message, expected="a registered layer or topology",
                                      found=name, fix=e.fix))
        return None
    except FieldError as e:
        problems.append(_field_problem(path, e))
        return None
    config = validate(cls.Config, rest, path, problems)
    if config is None:
        return None
    return _with_children(NodeSpec(canonical, cls, config, path), problems, allow_python_impl)


def _with_children(spec: NodeSpec, problems: list[ConfigProblem], allow_python_impl: bool) -> NodeSpec:
    path, config = spec.path, spec.config
    if spec.is_topology:
        for i, c in enumerate(config.layers):
            child = parse_node(c, path + ("layers", i), problems, allow_python_impl=allow_python_impl)
            # a child that failed stays as a placeholder of unknown width, so that width
            # problems elsewhere in the tree are still found; the problems list is not
            # empty, so nothing gets built
            spec.children.append(child or NodeSpec("<invalid>", None, None, path + ("layers", i)))
    return spec


def _parse_python_node(raw: dict[str, Any], rest: dict[str, Any], path: Path, problems: list[ConfigProblem],
                       allowed: bool) -> NodeSpec | None:
    try:
        cls = load_python_impl(raw["impl"], allowed=allowed)
    except FieldError as e:
        problems.append(_field_problem(path, e))
        return None
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        problems.append(ConfigProblem(path + ("impl",), f"{raw['impl']} is not a torch.nn.Module class",
                                      found=repr(cls)[:60], fix="point impl at an nn.Module subclass"))
        return None
    model = getattr(cls, "Config", None)
    if model is None:
        try:  # a plain module gets the remaining keys as constructor arguments
            inspect.signature(cls).bind(**rest)
        except TypeError as e:
            problems.append(ConfigProblem(path, f"{raw['impl']} does not accept these fields: {e}",
                                          found=", ".join(sorted(rest)) or "(none)",
                                          fix=f"pass only arguments of {cls.__name__}{inspect.signature(cls)}"))
            return None
        return NodeSpec(str(raw["impl"]), cls, dict(rest), path)
    config = validate(model, rest, path, problems)
    if config is None:
        return None
    return _with_children(NodeSpec(str(raw["impl"]), cls, config, path), problems, allowed)


def infer_widths(spec: NodeSpec, in_width: int | None, problems: list[ConfigProblem]) -> int | None:
    """Record and return the output width of ``spec`` for ``in_width``."""
    spec.in_width = in_width
    if spec.is_topology:
        def child(i: int, w: int | None) -> int | None:
            return infer_widths(spec.children[i], w, problems)

        def report(fld: Path, message: str, *, expected: str | None = None, found: str | None = None,
                   fix: str | None = None) -> None:
            problems.append(ConfigProblem(spec.path + fld, message, expected, found, fix))

        out = spec.cls.infer_width(spec.config, in_width, child, report)
    elif isinstance(spec.config, LayerConfig):
        try:
            out = spec.config.infer_width(in_width)
        except FieldError as e:
            problems.append(_field_problem(spec.path, e))
            # continue as if the layer took what flows in, so one wrong field is one problem
            out = spec.config.output_width(in_width)
    else:
        out = None  # invalid placeholder, or a python impl without a caramba Config: unknown
    spec.out_width = out
    return out


class _PythonModule(nn.Module):
    """Adapts a plain ``nn.Module`` (``forward(x)``) to the node call ``(x, cache=…)``."""

    tree_leaf = True  # plans show the impl as one node

    def __init__(self, inner: nn.Module, impl: str) -> None:
        super().__init__()
        self.inner = inner
        self.tree_type = impl  # what plans show as this node's type

    def forward(self, x: Any, cache: Any = None) -> Any:
        return self.inner(x)


def build_node(spec: NodeSpec) -> nn.Module:
    """Instantiate the module tree for a checked spec (widths already inferred)."""
    if spec.is_topology:
        def make_children() -> list[nn.Module]:
            return [build_node(c) for c in spec.children]

        return spec.cls.build(spec.config, make_children, spec.in_width, [c.out_width for c in spec.children])
    if isinstance(spec.config, dict):
        return _PythonModule(spec.cls(**spec.config), spec.type)
    module = spec.cls(spec.config)
    return module if hasattr(spec.cls, "Config") and _takes_cache(module) else _PythonModule(module, spec.type)


def _takes_cache(module: nn.Module) -> bool:
    return "cache" in inspect.signature(module.forward).parameters


def build_topology(raw: dict[str, Any], *, in_width: int | None = None, allow_python_impl: bool = False) -> nn.Module:
    """Parse, check and build a standalone node tree (layer or topology) from a dict.

    Raises :class:`~caramba.engine.layers.problems.ConfigError` listing every problem.
    """
    from caramba.engine.layers.problems import ConfigError

    problems: list[ConfigProblem] = Problems()
    spec = parse_node(raw, (), problems, allow_python_impl=allow_python_impl)
    if spec is not None:
        infer_widths(spec, in_width, problems)
    if problems or spec is None:
        raise ConfigError(f"{raw.get('type', 'node') if isinstance(raw, dict) else 'node'}", list(problems))
    return build_node(spec)

