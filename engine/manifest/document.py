"""Stage 1 of the pipeline: read a manifest file (or text) into located plain data.

Besides what :mod:`~caramba.engine.manifest.yaml_loader` and
:mod:`~caramba.engine.manifest.includes` do for every node, the top level of a manifest
has two conveniences:

* keys starting with ``x-`` are dropped — they exist to hold YAML anchors::

      x-block: &block {type: RMSNormLayer, d_model: 256}

* an item of ``targets`` without a ``type`` whose node carries an anchor is dropped too,
  so a target template can live in the list itself::

      targets:
        - &base {backend: torch, task: task.language_modeling, ...}
        - {<<: *base, type: experiment, name: small}

  (the YAML paths in messages keep the item numbers as written).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from caramba.engine.manifest.includes import IncludeHandler, project_root
from caramba.engine.manifest.source import IssueCollector, Origin, SourceMap
from caramba.engine.manifest.yaml_loader import NodeWalker, compose_text


#: the presets that ship with caramba (``caramba presets``, MCP ``list_presets``).
SHIPPED_MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"


def _missing_fix(source: str) -> str:
    """How to name a manifest that was not found: the shipped preset's path when ``source``
    names one (``standard_transformer``, ``preset:vit``, ``manifests/vit.yml`` outside the repo)."""
    stem = Path(source.removeprefix("preset:")).stem
    preset = SHIPPED_MANIFESTS / f"{stem}.yml"
    if stem and preset.is_file():
        return f"'{stem}' is a shipped preset: give its path, {preset} ('caramba presets' lists them)"
    return "check the path (relative paths start from the current folder)"


def read_text(source: Path | str, text: str | None, issues: IssueCollector) -> str | None:
    """The manifest text: ``text`` if given, else the file's contents (or an issue)."""
    if text is not None:
        return text
    path = Path(source)
    where = Origin(str(source), None, None, ())
    if not path.exists():
        issues.add_at(where, (), f"manifest file not found: {source}", fix=_missing_fix(str(source)))
        return None
    if not path.is_file():
        issues.add_at(where, (), f"not a file: {source}", fix="give the path of a .yml manifest")
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        issues.add_at(where, (), f"cannot read manifest: {e}", fix="make it a readable UTF-8 YAML file")
        return None


def parse_document(source: Path | str, text: str | None, smap: SourceMap,
                   issues: IssueCollector) -> dict[str, Any] | None:
    """Plain data of the manifest with includes spliced in; ``None`` if unreadable."""
    display = str(source)
    content = read_text(source, text, issues)
    if content is None:
        return None
    composed = compose_text(content, display, issues)
    if composed is None:
        return None
    root = composed.root
    if root is None:
        issues.add_at(Origin(display, 1, 1, ()), (), "manifest is empty",
                      fix="start from a preset: 'caramba presets' lists them")
        return None
    if not isinstance(root, yaml.MappingNode):
        issues.add_at(Origin(display, root.start_mark.line + 1, root.start_mark.column + 1, ()), (),
                      "a manifest must be a mapping (version, name, defaults, targets, ...)",
                      fix="see the manifest reference for the top-level keys")
        return None
    file = Path(source)
    handler = IncludeHandler(project_root(file.parent), smap, issues, ((file.resolve(), display),))
    walker = NodeWalker(composed, file, display, smap, issues, handler)
    smap.set((), walker.origin(root, ()))
    data: dict[str, Any] = {}
    for key_node, value_node in walker.mapping_pairs(root, ()):
        key = str(key_node.value)
        if key.startswith("x-"):
            continue
        smap.set((key,), walker.origin(key_node, (key,)))
        if key == "targets" and isinstance(value_node, yaml.SequenceNode):
            data[key] = _targets(walker, value_node, composed.anchored, smap)
        else:
            data[key] = walker.walk(value_node, (key,), (key,))
    return data


def _is_template(node: yaml.Node, anchored: set[int]) -> bool:
    if not isinstance(node, yaml.MappingNode) or id(node) not in anchored:
        return False
    return not any(isinstance(k, yaml.ScalarNode) and k.value == "type" for k, _ in node.value)


def _targets(walker: NodeWalker, node: yaml.SequenceNode, anchored: set[int], smap: SourceMap) -> list[Any]:
    out: list[Any] = []
    for src_index, item in enumerate(node.value):
        if _is_template(item, anchored):
            continue
        data_path = ("targets", len(out))
        source_path = ("targets", src_index)
        smap.set(data_path, walker.origin(item, source_path))
        out.append(walker.walk(item, data_path, source_path))
    return out
