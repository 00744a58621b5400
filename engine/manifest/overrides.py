"""``--set dotted.path=value``: change a manifest from the command line.

Path syntax (the same paths error messages print)::

    targets[0].runs[0].steps=5          list items by position
    targets.small.runs.quick.train.lr=1e-3   list items by their 'name' or 'id'
    targets[small].runs[quick].steps=5  the same, in brackets
    vars.d_model=256                    vars are overridden *before* substitution

The value is read as a YAML value (``5`` is an int, ``true`` a bool, ``[1, 2]`` a
list, ``1e-3`` a numeric string the schema turns into a float). Every step of the path
must exist, except that the last key may be new in a mapping (the schema then checks it
is a real field) and that an optional section of the schema the manifest leaves out is
created (``defaults.logging.eval_iters=2`` works without a ``defaults:`` block). An unknown path is an error with a did-you-mean, and so is a variable
the manifest neither defines in ``vars`` nor uses as ``${name}`` (it would change nothing).
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any

import yaml
from pydantic import BaseModel

from caramba.engine.manifest.source import (
    OVERRIDE_FILE, IssueCollector, Origin, SourceMap, YPath, did_you_mean, format_path,
)

_SEGMENT = re.compile(r"([^.\[\]]+)|\[([^\]]*)\]")
_USAGE = "write --set path=value, e.g. --set targets[0].runs[0].steps=5 or --set vars.lr=1e-3"


class OverrideError(ValueError):
    """A bad ``--set``; ``fix`` says how to write it."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


def parse_override(spec: str) -> tuple[list[str | int], str, Any]:
    """``"a[0].b=5"`` → (["a", 0, "b"], "a[0].b", 5)."""
    if "=" not in spec:
        raise OverrideError(f"--set '{spec}' has no '='", _USAGE)
    raw_path, raw_value = spec.split("=", 1)
    raw_path = raw_path.strip()
    segments: list[str | int] = []
    pos = 0
    for m in _SEGMENT.finditer(raw_path):
        between = raw_path[pos:m.start()]
        if between not in ("", ".") or (between == "." and not segments):
            raise OverrideError(f"--set '{spec}': cannot read path '{raw_path}'", _USAGE)
        pos = m.end()
        if m.group(1) is not None:
            segments.append(m.group(1))
        else:
            inner = m.group(2).strip()
            segments.append(int(inner) if re.fullmatch(r"-?\d+", inner) else inner)
    if not segments or pos != len(raw_path):
        raise OverrideError(f"--set '{spec}': cannot read path '{raw_path}'", _USAGE)
    try:
        value = yaml.safe_load(raw_value) if raw_value.strip() else None
    except yaml.YAMLError as e:
        raise OverrideError(f"--set '{spec}': the value is not valid YAML ({e})",
                            "quote the value, e.g. --set 'notes=\"a: b\"'") from e
    return segments, raw_path, value


def _list_index(items: list[Any], seg: str | int) -> int:
    """Index of ``seg`` in a list: a position, or the item whose name/id is ``seg``."""
    if isinstance(seg, int):
        if -len(items) <= seg < len(items):
            return seg % len(items)
        raise KeyError(f"index {seg} is out of range (the list has {len(items)} items)")
    names = [str(it.get("name", it.get("id"))) for it in items if isinstance(it, dict)]
    for i, item in enumerate(items):
        if isinstance(item, dict) and str(item.get("name", item.get("id"))) == seg:
            return i
    close = did_you_mean(seg, names)
    hint = f"; did you mean '{close}'?" if close else (f"; names here: {', '.join(names)}" if names else "")
    raise KeyError(f"no item named '{seg}' in this list{hint}")


def apply_override(data: dict[str, Any], segments: list[str | int], value: Any) -> YPath:
    """Set ``value`` at ``segments`` in ``data``; returns the concrete path (indices)."""
    node: Any = data
    path: list[str | int] = []
    for depth, seg in enumerate(segments):
        last = depth == len(segments) - 1
        where = f"in '{format_path(path)}'" if path else "at the top level"
        if isinstance(node, list):
            try:
                idx = _list_index(node, seg)
            except KeyError as e:
                raise OverrideError(f"{where}: {e.args[0]}", "use a position like [0] or an item's name or id") from None
            path.append(idx)
            if last:
                node[idx] = value
            else:
                node = node[idx]
        elif isinstance(node, dict):
            key = str(seg)
            if key not in node and not last and _schema_section([*path, key]):
                node[key] = {}  # an optional section the manifest left out, e.g. defaults.logging
            if key not in node and not last:
                known = list(dict.fromkeys([*map(str, node), *_schema_keys(path)]))
                close = did_you_mean(key, known)
                fix = f"did you mean '{close}'?" if close else f"keys here: {', '.join(known) or 'none'}"
                raise OverrideError(f"{where}: no key '{key}'", fix)
            path.append(key)
            if last:
                node[key] = value
            else:
                node = node[key]
        else:
            raise OverrideError(f"{where}: a {type(node).__name__} value has no '{seg}'",
                                "the path goes one step too deep")
    return tuple(path)


def _models_in(tp: Any) -> list[Any]:
    """The pydantic models (or ``dict`` for a free mapping) a field annotation can hold."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType, list):
        return [m for arg in typing.get_args(tp) for m in _models_in(arg)]
    if tp is dict or origin is dict:
        return [dict]
    return [tp] if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def _schema_models(path: list[str | int]) -> list[Any]:
    """What the manifest schema allows at ``path`` (list positions skipped): pydantic models,
    ``dict`` for a free mapping, or nothing when ``path`` is not a section of the schema."""
    from caramba.engine.manifest.schema import Manifest

    models: list[Any] = [Manifest]
    for seg in path:
        if isinstance(seg, int):
            continue
        fields = [m.model_fields[seg] for m in models if m is not dict and seg in m.model_fields]
        models = [m for f in fields for m in _models_in(f.annotation)]
        if not models:
            break
    return models


def _schema_section(path: list[str | int]) -> bool:
    """True when ``path`` is a mapping-valued section of the schema, e.g. ``defaults``,
    ``defaults.logging``, ``targets[0].runs[0].train``: a missing one may be created."""
    return bool(_schema_models(path))


def _schema_keys(path: list[str | int]) -> list[str]:
    return sorted({k for m in _schema_models(path) if m is not dict for k in m.model_fields})


def _mentions(node: Any, pattern: re.Pattern[str]) -> bool:
    if isinstance(node, str):
        return pattern.search(node) is not None
    if isinstance(node, dict):
        return any(_mentions(v, pattern) for v in node.values())
    if isinstance(node, list):
        return any(_mentions(v, pattern) for v in node)
    return False


def _unknown_var(data: dict[str, Any], segments: list[str | int]) -> tuple[str, str] | None:
    """``(message, fix)`` when ``--set vars.NAME=…`` names a variable the manifest neither
    defines nor uses: the value would change nothing (usually a typo, e.g. ``vars.step``)."""
    if len(segments) != 2 or segments[0] != "vars":
        return None
    name = str(segments[1])
    defined = data.get("vars") if isinstance(data.get("vars"), dict) else {}
    if name in defined or _mentions(data, re.compile(r"\$\{\s*" + re.escape(name) + r"\s*\}")):
        return None
    known = [str(k) for k in defined]
    close = did_you_mean(name, known)
    fix = (f"did you mean 'vars.{close}'?" if close else
           f"variables here: {', '.join(known)}" if known else "this manifest defines no vars; set the field itself")
    return f"unknown variable '{name}': the manifest neither defines nor uses it, so this --set would change nothing", fix


def apply_overrides(data: dict[str, Any], specs: list[str], smap: SourceMap, issues: IssueCollector,
                    *, vars_only: bool) -> None:
    """Apply the ``--set`` specs that touch ``vars`` (``vars_only``) or everything else."""
    for spec in specs:
        try:
            segments, raw_path, value = parse_override(spec)
        except OverrideError as e:
            if vars_only:
                issues.add_at(Origin(OVERRIDE_FILE, None, None, ()), (), str(e), fix=e.fix)
            continue
        if (segments[0] == "vars") != vars_only:
            continue
        unknown = _unknown_var(data, segments)
        if unknown is not None:
            issues.add_at(Origin(OVERRIDE_FILE, None, None, ()), (raw_path,), unknown[0], fix=unknown[1])
            continue
        try:
            path = apply_override(data, segments, value)
        except OverrideError as e:
            issues.add_at(Origin(OVERRIDE_FILE, None, None, ()), (raw_path,), str(e), fix=e.fix)
            continue
        smap.drop_under(path)
        smap.set(path, Origin(OVERRIDE_FILE, None, None, path))
