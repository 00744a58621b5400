"""The component catalog, read from the registries and their pydantic configs.

:func:`catalog` lists every registered model-building component and system;
:func:`describe_component` gives one component's fields (name, type, default,
required, description). Used by ``caramba layers`` and by tools that help write
manifests, so everything here is JSON-able.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from caramba.engine.registry import Registry, UnknownComponent


def _families() -> list[Registry[Any]]:
    from caramba.engine.layers.registry import EMBEDDERS, INITIALIZERS, LAYERS, MODELS, TOPOLOGIES
    from caramba.engine.systems.registry import SYSTEMS

    return [LAYERS, TOPOLOGIES, MODELS, EMBEDDERS, INITIALIZERS, SYSTEMS]


def _summary(obj: Any) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""


def _aliases(reg: Registry[Any], name: str) -> list[str]:
    return sorted(a for a, target in reg.aliases().items() if target == name)


def catalog() -> list[dict[str, Any]]:
    """One row per registered component: name, family, aliases, summary."""
    return [{"name": name, "family": reg.family, "aliases": _aliases(reg, name), "summary": _summary(cls)}
            for reg in _families() for name, cls in reg.items()]


def type_str(ann: Any) -> str:
    """A readable type: ``int | None``, ``standard | gqa`` for a Literal, ``list[int]``."""
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
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
    known = [n for reg in families for n in (*reg.names(), *reg.aliases())]
    raise UnknownComponent("component", name, known)
