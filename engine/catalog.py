"""The component catalog, read from the registries and their pydantic configs.

:func:`catalog` lists every registered component (:data:`FAMILIES`: layers, topologies,
models, embedders, initializers, systems, datasets, objectives, trainers, tasks) and the
manifest's own sections (:mod:`caramba.engine.catalog_sections`: ``train``, ``run``,
``defaults.*``, ``benchmarks.*``, ``verify.*``); :func:`describe_component` gives one
entry's fields (name, type, default, required, description). Used by ``caramba layers``
and by the MCP/REST catalog (:mod:`caramba.tools.catalog`), so everything here is JSON-able.
"""

from __future__ import annotations

import importlib
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from caramba.engine.registry import Registry, UnknownComponent


#: family → (module, registry attribute); the order is the catalog's.
FAMILIES: dict[str, tuple[str, str]] = {
    "layers": ("caramba.engine.layers.registry", "LAYERS"),
    "topologies": ("caramba.engine.layers.registry", "TOPOLOGIES"),
    "models": ("caramba.engine.layers.registry", "MODELS"),
    "embedders": ("caramba.engine.layers.registry", "EMBEDDERS"),
    "initializers": ("caramba.engine.layers.registry", "INITIALIZERS"),
    "systems": ("caramba.engine.systems.registry", "SYSTEMS"),
    "datasets": ("caramba.engine.data.registry", "DATASETS"),
    "objectives": ("caramba.engine.train.registry", "OBJECTIVES"),
    "trainers": ("caramba.engine.train.registry", "TRAINERS"),
    "tasks": ("caramba.engine.train.registry", "TASKS"),
}


def registry(family: str) -> Registry[Any]:
    """The registry of one :data:`FAMILIES` entry."""
    module, attr = FAMILIES[family]
    return getattr(importlib.import_module(module), attr)


def _families() -> list[Registry[Any]]:
    return [registry(f) for f in FAMILIES]


def _summary(obj: Any) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""


def _aliases(reg: Registry[Any], name: str) -> list[str]:
    return sorted(a for a, target in reg.aliases().items() if target == name)


def catalog() -> list[dict[str, Any]]:
    """One row per registered component, then per manifest section: name, family, aliases, summary."""
    from caramba.engine.catalog_sections import FAMILY, sections

    rows = [{"name": name, "family": reg.family, "aliases": _aliases(reg, name), "summary": _summary(cls)}
            for reg in _families() for name, cls in reg.items()]
    return rows + [{"name": name, "family": FAMILY, "aliases": [], "summary": _summary(model)}
                   for name, model in sections().items()]


def type_str(ann: Any) -> str:
    """A readable type: ``int | None``, ``standard | gqa`` for a Literal, ``list[int]``."""
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin is typing.Annotated:  # constrained types (PositiveInt, Fraction, …): the base type
        return type_str(args[0])
    if origin is typing.Literal:
        return " | ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_str(a) for a in args)
    if ann is type(None):
        return "None"
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(type_str(a) for a in args)}]" if args else name
    return getattr(ann, "__name__", str(ann).replace("typing.", ""))


def config_fields(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The fields of a pydantic config: name, type, required, default, description."""
    out = []
    for name, f in model.model_fields.items():
        required = f.is_required()
        if required:
            default = None
        elif f.default_factory is not None:
            default = f.default_factory()  # type: ignore[call-arg]
        else:
            default = None if f.default is PydanticUndefined else f.default
        if isinstance(default, BaseModel):
            default = default.model_dump()
        out.append({"name": name, "type": type_str(f.annotation), "required": required,
                    "default": default, "description": f.description})
    return out


def describe_component(name: str) -> dict[str, Any]:
    """Everything ``caramba layers NAME`` shows; raises UnknownComponent with a hint."""
    from caramba.engine.catalog_sections import FAMILY, sections

    section = sections().get(name)
    if section is not None:
        return {"name": name, "family": FAMILY, "aliases": [], "doc": (section.__doc__ or "").strip(),
                "fields": config_fields(section)}
    families = _families()
    for reg in families:
        if name in reg:
            canonical = reg.canonical(name)
            cls = reg.get(canonical)
            config = getattr(cls, "Config", None)
            info: dict[str, Any] = {
                "name": canonical, "family": reg.family, "aliases": _aliases(reg, canonical),
                "doc": (cls.__doc__ or "").strip(),
                "fields": config_fields(config) if config is not None else [],
            }
            variants = getattr(cls, "variants", None)
            if variants is not None:
                field, vreg = variants
                base = set(config.model_fields) if config is not None else set()
                info["variant_field"] = field
                info["variants"] = [
                    {"name": vname, "class": vcls.__name__,
                     "extra_fields": [f for f in config_fields(vcls.Config) if f["name"] not in base]}
                    for vname, vcls in vreg.items()]
            return info
    known = [n for reg in families for n in (*reg.names(), *reg.aliases())] + list(sections())
    raise UnknownComponent("component", name, known)
