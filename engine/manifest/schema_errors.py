"""Translate pydantic ``ValidationError``\\ s of the manifest schema into located issues.

Users never see pydantic's own text dump. Each error becomes one
:class:`~caramba.engine.errors.ManifestIssue` with:

* the YAML path of the data (pydantic's ``loc`` minus the discriminator tags it inserts,
  e.g. ``('targets', 0, 'experiment', 'runs', 0, 'train', 'lrr')`` →
  ``targets[0].runs[0].train.lrr``), located through the source map;
* a plain message (``unknown field 'lrr'``, ``expected an integer``), what was expected,
  what was found, and a fix — for unknown fields and bad choices a did-you-mean computed
  from the schema itself.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any, Union

from pydantic import BaseModel, ValidationError

from caramba.engine.manifest.schema_base import PROBLEM
from caramba.engine.manifest.source import IssueCollector, YPath, did_you_mean, short

_SIMPLE = {
    "int_parsing": ("expected an integer", "write a whole number, e.g. 8"),
    "int_type": ("expected an integer", "write a whole number, e.g. 8"),
    "int_from_float": ("expected an integer", "write a whole number, e.g. 8"),
    "float_parsing": ("expected a number", "write a number, e.g. 0.001 or 1e-3"),
    "float_type": ("expected a number", "write a number, e.g. 0.001 or 1e-3"),
    "bool_parsing": ("expected true or false", "write true or false"),
    "bool_type": ("expected true or false", "write true or false"),
    "string_type": ("expected text", "write a string (quote it if YAML reads it as something else)"),
    "list_type": ("expected a list", "write a YAML list, e.g. [a, b] or '- a' items"),
    "tuple_type": ("expected a list", "write a YAML list, e.g. [0.9, 0.95]"),
    "dict_type": ("expected a mapping", "write 'key: value' pairs here"),
    "model_type": ("expected a mapping", "write 'key: value' pairs here"),
    "model_attributes_type": ("expected a mapping", "write 'key: value' pairs here"),
}
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def _unwrap(ann: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` down to the interesting type."""
    while True:
        origin = typing.get_origin(ann)
        if origin is typing.Annotated:
            ann = typing.get_args(ann)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in typing.get_args(ann) if a is not type(None)]
            if len(args) != 1:
                return ann
            ann = args[0]
        else:
            return ann


def schema_at(model: type[BaseModel], loc: tuple[Any, ...]) -> Any:
    """The schema type found by following pydantic ``loc`` from ``model`` (or None)."""
    ann: Any = model
    for el in loc:
        ann = _unwrap(ann)
        origin = typing.get_origin(ann)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            field = ann.model_fields.get(str(el))
            if field is None:
                return None
            ann = field.annotation
        elif origin in (list, tuple):
            ann = typing.get_args(ann)[0]
        elif origin is dict:
            ann = typing.get_args(ann)[1]
        elif origin in (Union, types.UnionType):  # discriminated union: el is the tag
            ann = next((m for m in typing.get_args(ann) if _tag_of(m) == el), None)
            if ann is None:
                return None
        else:
            return None
    return _unwrap(ann)


def _tag_of(member: Any) -> Any:
    member = _unwrap(member)
    if isinstance(member, type) and issubclass(member, BaseModel) and "type" in member.model_fields:
        args = typing.get_args(member.model_fields["type"].annotation)
        return args[0] if args else None
    return None


def data_path(loc: tuple[Any, ...], data: Any) -> YPath:
    """Pydantic ``loc`` → the YAML path, dropping discriminator tags pydantic inserts."""
    out: list[str | int] = []
    node: Any = data
    skipped_tag = False
    for el in loc:
        if isinstance(node, dict) and node.get("type") == el and not skipped_tag:
            skipped_tag = True  # the tag of a discriminated union (a process target's loc is
            continue            # ('targets', 0, 'process', 'process', ...): tag, then the field)
        skipped_tag = False
        if isinstance(node, dict) and el in node:
            out.append(el)
            node = node[el]
        elif isinstance(node, list) and isinstance(el, int) and 0 <= el < len(node):
            out.append(el)
            node = node[el]
        elif isinstance(el, str) and el.startswith(("function-", "[key]")):
            continue
        else:
            out.append(el)
            node = None
    return tuple(out)


def _options(expected: str) -> list[str]:
    return re.findall(r"'([^']*)'", expected)


def report_schema_errors(exc: ValidationError, model: type[BaseModel], data: Any, issues: IssueCollector) -> None:
    """Add one located issue per pydantic error."""
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        path = data_path(loc, data)
        kind, ctx, found = err["type"], err.get("ctx") or {}, err.get("input")
        if kind == PROBLEM:
            issues.add(path, str(ctx.get("message")), fix=ctx.get("fix"))
        elif kind == "extra_forbidden":
            parent = schema_at(model, loc[:-1])
            known = sorted(parent.model_fields) if isinstance(parent, type) and issubclass(parent, BaseModel) else []
            close = did_you_mean(str(loc[-1]), known)
            fix = f"did you mean '{close}'?" if close else f"remove it; known fields: {', '.join(known)}"
            issues.add(path, f"unknown field '{loc[-1]}'", fix=fix)
        elif kind == "missing":
            parent = schema_at(model, loc[:-1])
            field = parent.model_fields.get(str(loc[-1])) if isinstance(parent, type) and issubclass(parent, BaseModel) else None
            issues.add(path, f"missing required field '{loc[-1]}'",
                       expected=field.description if field is not None else None,
                       fix=f"add '{loc[-1]}: ...' here")
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            union = schema_at(model, loc)
            tags = [str(_tag_of(m)) for m in typing.get_args(union)] if union is not None else []
            if kind == "union_tag_not_found":
                issues.add(path + ("type",), "missing 'type'", expected=f"one of {', '.join(tags)}",
                           fix=f"add 'type: {tags[0]}'" if tags else None)
            else:
                tag = str(ctx.get("tag"))
                close = did_you_mean(tag, tags)
                issues.add(path + ("type",), f"unknown type '{tag}'", expected=f"one of {', '.join(tags)}",
                           found=short(tag), fix=f"did you mean '{close}'?" if close else f"use one of: {', '.join(tags)}")
        elif kind == "literal_error":
            options = _options(str(ctx.get("expected", "")))
            close = did_you_mean(str(found), options)
            issues.add(path, "invalid value", expected=f"one of {', '.join(options)}", found=short(found),
                       fix=f"did you mean '{close}'?" if close else f"use one of: {', '.join(options)}")
        elif kind in _BOUNDS:
            bound = next(iter(ctx.values()))
            issues.add(path, "value out of range", expected=f"{_BOUNDS[kind]} {bound}", found=short(found),
                       fix=f"use a value {_BOUNDS[kind]} {bound}")
        elif kind == "too_short":
            need = ctx.get("min_length", 1)
            issues.add(path, f"needs at least {need} item{'s' if need != 1 else ''}", found=short(found),
                       fix="add the missing entries")
        elif kind == "string_pattern_mismatch" and "cuda" in str(ctx.get("pattern", "")):
            issues.add(path, "invalid device", expected="auto, cpu, cuda, cuda:N, mps or meta", found=short(found),
                       fix="write e.g. 'device: auto' (cuda when available, else cpu)")
        elif kind == "string_pattern_mismatch":
            issues.add(path, "invalid name", expected="letters, digits, '_', '-', '.' (starting with a letter or digit)",
                       found=short(found), fix="rename it; names become folder names")
        elif kind in _SIMPLE:
            message, fix = _SIMPLE[kind]
            issues.add(path, message, found=short(found), fix=fix)
        else:
            message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
            issues.add(path, message, found=short(found), fix="see the manifest reference for this field")
