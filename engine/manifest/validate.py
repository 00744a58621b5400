"""Stage 6: checks that need more than the schema — components and cross-references.

* **Components.** For every experiment target, each of ``data``, ``system``,
  ``objective``, ``trainer`` and ``task`` names a registry entry; the entry's
  ``check_config(config) -> list[ConfigProblem]`` validates its own ``config``
  (pydantic + semantics such as tensor widths through the topology). Each problem's
  path is relative to that config; here it becomes a full, located YAML path such as
  ``targets[0].system.config.model.topology.layers[0].layers[1].d_model``.
  An unknown ref gets the registry's did-you-mean.
* **Python implementations.** ``impl: python:module:Symbol`` (and any config value
  starting with ``python:``, e.g. a graph node's ``op``) runs code named by the
  manifest; it is refused unless ``defaults.runtime.allow_python_impl: true`` or the
  caller allows it (``--allow-python-impl``). When allowed, the symbol is imported now
  so a typo is reported before a run starts, and its own ``check_config`` is used if it
  has one.
* **Cross-references.** Unique target names, run ids and benchmark ids; entrypoints
  name existing targets.

Everything works on the plain data, so these checks run even when the schema found
problems elsewhere: one ``caramba validate`` shows them all.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

from caramba.engine.manifest.source import IssueCollector, YPath, did_you_mean, format_path
from caramba.engine.registry import Registry, UnknownComponent

#: a target's component key → its registry family in :data:`caramba.engine.catalog.FAMILIES`
#: (docs/internals.md "Registries").
COMPONENT_REGISTRIES: dict[str, str] = {
    "task": "tasks", "data": "datasets", "system": "systems", "objective": "objectives", "trainer": "trainers",
}

_PYTHON_IMPL = re.compile(r"^python:([A-Za-z_][\w.]*):([A-Za-z_][\w.]*)$")
_ALLOW_FIX = ("if you trust this code, set 'defaults.runtime.allow_python_impl: true' in the manifest "
              "or pass --allow-python-impl; otherwise use a registered component")


def registry_for(key: str) -> Registry[Any]:
    from caramba.engine.catalog import registry

    return registry(COMPONENT_REGISTRIES[key])


def _takes_allow(check_config: Any) -> bool:
    """Whether a ``check_config`` accepts ``allow_python_impl`` (systems do: nodes may carry impls)."""
    return "allow_python_impl" in inspect.signature(check_config).parameters


def _import_symbol(spec: str) -> Any:
    """``python:pkg.mod:Class`` → the object (raises ImportError/AttributeError)."""
    m = _PYTHON_IMPL.match(spec)
    if m is None:
        raise ImportError(f"'{spec}' is not of the form python:package.module:Symbol")
    obj: Any = importlib.import_module(m.group(1))
    for part in m.group(2).split("."):
        obj = getattr(obj, part)
    return obj


class ComponentChecker:
    """Runs the component and cross-reference checks over a manifest's plain data."""

    def __init__(self, issues: IssueCollector, *, allow_python_impl: bool) -> None:
        self.issues = issues
        self.allow = allow_python_impl

    def check(self, data: dict[str, Any]) -> None:
        targets = data.get("targets")
        if isinstance(targets, list):
            for i, target in enumerate(targets):
                if isinstance(target, dict) and target.get("type") == "experiment":
                    for key in COMPONENT_REGISTRIES:
                        self._component(target.get(key), ("targets", i, key), key)
                    self._unique(target.get("runs"), ("targets", i, "runs"), "id", "run id")
                    self._unique(target.get("benchmarks"), ("targets", i, "benchmarks"), "id", "benchmark id")
            self._unique(targets, ("targets",), "name", "target name")
        self._entrypoints(data.get("entrypoints"), targets if isinstance(targets, list) else [])

    def _component(self, spec: Any, path: YPath, key: str) -> None:
        if isinstance(spec, str):
            ref, impl, config, ref_path = spec, None, {}, path
        elif isinstance(spec, dict) and isinstance(spec.get("ref"), str):
            ref, impl, config, ref_path = spec["ref"], spec.get("impl"), spec.get("config") or {}, path + ("ref",)
        else:
            return  # the schema reports a missing or malformed spec
        registry = registry_for(key)
        try:
            entry = registry.get(ref)
        except UnknownComponent as e:
            self.issues.add(ref_path, e.message, found=repr(ref), fix=e.fix)
            return
        if not isinstance(config, dict):
            return  # the schema reports it
        self._python_values(config, path + ("config",))
        checker = entry
        if isinstance(impl, str):
            loaded = self._impl(impl, path + ("impl",))
            if loaded is None:
                return
            checker = loaded if hasattr(loaded, "check_config") else entry
        kwargs = {"allow_python_impl": self.allow} if _takes_allow(checker.check_config) else {}
        for p in checker.check_config(config, **kwargs):
            self.issues.add(path + ("config",) + tuple(p.path), p.message,
                            expected=p.expected, found=p.found, fix=p.fix)

    def _impl(self, impl: str, path: YPath) -> Any:
        if not _PYTHON_IMPL.match(impl):
            self.issues.add(path, f"invalid impl '{impl}'", expected="python:package.module:Symbol",
                            found=repr(impl), fix="write e.g. 'impl: python:my_pkg.layers:MyAttention', or drop 'impl'")
            return None
        if not self.allow:
            self.issues.add(path, f"python implementation '{impl}' is refused: it would run code the manifest names",
                            fix=_ALLOW_FIX)
            return None
        try:
            return _import_symbol(impl)
        except Exception as e:  # user code: report whatever importing it raised, located
            self.issues.add(path, f"cannot import '{impl}': {type(e).__name__}: {e}",
                            fix="check the module is importable (on PYTHONPATH) and the symbol name")
            return None

    def _python_values(self, value: Any, path: YPath) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                self._python_values(v, path + (k,))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self._python_values(v, path + (i,))
        elif isinstance(value, str) and value.startswith("python:") and not self.allow:
            self.issues.add(path, f"python implementation '{value}' is refused: it would run code the manifest names",
                            fix=_ALLOW_FIX)
            self.issues.poison(path)

    def _unique(self, items: Any, path: YPath, key: str, what: str) -> None:
        if not isinstance(items, list):
            return
        first: dict[str, int] = {}
        for j, item in enumerate(items):
            name = item.get(key) if isinstance(item, dict) else None
            if not isinstance(name, str):
                continue
            if name in first:
                origin, _ = self.issues.smap.locate(path + (first[name], key))
                where = f"line {origin.line}" if origin and origin.line else format_path(path + (first[name],))
                self.issues.add(path + (j, key), f"duplicate {what} '{name}' (first used at {where})",
                                fix=f"give each {what} a unique value")
            else:
                first[name] = j

    def _entrypoints(self, entrypoints: Any, targets: list[Any]) -> None:
        if not isinstance(entrypoints, dict):
            return
        names = [t["name"] for t in targets if isinstance(t, dict) and isinstance(t.get("name"), str)]
        if not names:
            return  # no (valid) targets at all: reported under 'targets'
        for key, value in entrypoints.items():
            if not isinstance(value, str):
                continue  # the schema reports it
            name = value[len("target:"):] if value.startswith("target:") else value
            if name not in names:
                close = did_you_mean(name, names)
                self.issues.add(("entrypoints", key), f"entrypoint '{key}' names a missing target '{name}'",
                                expected=f"one of {', '.join(names)}", found=repr(value),
                                fix=f"did you mean '{close}'?" if close else f"use one of: {', '.join(names)}")
