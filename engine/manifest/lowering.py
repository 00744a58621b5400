"""Stage 4: lowering — rewrite the system config into the one form the builders read.

Two rewrites, applied to every experiment target's ``system.config`` tree:

1. **Aliases.** Any mapping with a ``type`` key whose value is a registered lower-case
   alias becomes the canonical name (``rms_norm`` → ``RMSNormLayer``, ``nested`` →
   ``NestedTopology``). The aliases live in the LAYERS, TOPOLOGIES, MODELS and EMBEDDERS
   registries (``engine/layers/registry.py``), which guarantee one namespace. Unknown
   names are left alone: the system's ``check_config`` reports them with a did-you-mean.
2. **``NestedTopology.repeat: N``.** The ``layers`` of the node are repeated N times
   and ``repeat`` is removed::

       {type: NestedTopology, repeat: 2, layers: [A, B]}  →  {type: NestedTopology, layers: [A, B, A, B]}

   Repeats nest. The lowered tree gets a new source map in which every copied node
   still reports its *source* path and line, so a width error in the third copy of a
   block points at the block as written (and is reported once, not N times).
"""

from __future__ import annotations

from typing import Any

from caramba.engine.manifest.source import IssueCollector, SourceMap, YPath, short

#: the most layers one ``repeat`` may produce (a typo like ``repeat: 12000`` would
#: otherwise build a model that never fits in memory).
MAX_REPEAT = 4096


def _canonical_type(name: str) -> str:
    from caramba.engine.layers.registry import NODE_FAMILIES

    for registry in NODE_FAMILIES:
        if name in registry:
            return registry.canonical(name)
    return name


class Lowerer:
    """Lowers a manifest's data; :attr:`smap` is the source map of the lowered tree."""

    def __init__(self, source: SourceMap, issues: IssueCollector) -> None:
        self.source = source
        self.issues = issues
        self.smap = SourceMap(source.entries)

    def lower(self, data: dict[str, Any]) -> dict[str, Any]:
        targets = data.get("targets")
        if not isinstance(targets, list):
            return data
        for i, target in enumerate(targets):
            if not isinstance(target, dict) or target.get("type") != "experiment":
                continue
            system = target.get("system")
            if isinstance(system, dict) and isinstance(system.get("config"), dict):
                path: YPath = ("targets", i, "system", "config")
                self.smap.drop_under(path)
                system["config"] = self._node(system["config"], path, path)
        return data

    def _node(self, value: Any, old: YPath, new: YPath) -> Any:
        origin = self.source.get(old)
        if origin is not None:
            self.smap.set(new, origin)
        if isinstance(value, list):
            return [self._node(v, old + (i,), new + (i,)) for i, v in enumerate(value)]
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        kind = value.get("type")
        if isinstance(kind, str):
            kind = _canonical_type(kind)
        repeat = self._repeat(value, old) if kind == "NestedTopology" and "repeat" in value else None
        for key, child in value.items():
            if key == "type":
                out[key] = kind
                self._copy_origin(old + (key,), new + (key,))
            elif key == "repeat" and repeat is not None:
                continue
            elif key == "layers" and repeat is not None and isinstance(child, list):
                self._copy_origin(old + (key,), new + (key,))
                out[key] = [
                    self._node(layer, old + (key, i), new + (key, r * len(child) + i))
                    for r in range(repeat) for i, layer in enumerate(child)
                ]
            else:
                out[key] = self._node(child, old + (key,), new + (key,))
        return out

    def _copy_origin(self, old: YPath, new: YPath) -> None:
        origin = self.source.get(old)
        if origin is not None:
            self.smap.set(new, origin)

    def _repeat(self, value: dict[str, Any], old: YPath) -> int | None:
        """The validated ``repeat`` count, or None (after reporting) when unusable."""
        n = value["repeat"]
        if isinstance(n, str) and n.strip().isdigit():
            n = int(n)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1 or n > MAX_REPEAT:
            self.issues.add(old + ("repeat",), "NestedTopology 'repeat' must be a whole number of copies",
                            expected=f"an integer from 1 to {MAX_REPEAT}", found=short(n),
                            fix="write e.g. 'repeat: 6' to stack the block's layers six times")
            self.issues.poison(old + ("repeat",))
            return None
        if not isinstance(value.get("layers"), list):
            return None  # check_config reports the missing/invalid 'layers'
        return n
