"""Safe YAML loading that remembers the file, line and column of every value.

PyYAML's ``SafeLoader`` first *composes* a node graph (every node carries a start mark)
and then *constructs* Python objects, forgetting the marks. This module composes with
the safe loader and walks the nodes itself, producing plain data plus a
:class:`~caramba.engine.manifest.source.SourceMap` entry for every mapping key and list
item. What YAML offers keeps working:

* anchors and aliases (``&base`` / ``*base``) and merge keys (``<<: *base``; keys
  written next to the merge win). Values that come from an anchor point at the anchor's
  text.
* ``!include path`` and ``!include {path: ..., vars: {...}}`` — see
  :mod:`caramba.engine.manifest.includes`.
* scalars resolve as YAML 1.1 does (``yes`` is a boolean, ``1e-5`` is a *string*: the
  schema coerces numeric strings where it expects a number). Timestamps stay strings.

Only the safe tag set is accepted; any other tag (``!!python/object``) is an error.
Duplicate keys in one mapping are errors (PyYAML silently keeps the last one).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from caramba.engine.manifest.source import IssueCollector, Origin, SourceMap, YPath, format_path

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_PLAIN_TAGS = {"tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null")}
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
INCLUDE_TAG = "!include"


#: values one file may expand to (aliases included); real manifests have a few thousand.
MAX_VALUES = 200_000


class _Loader(yaml.SafeLoader):
    """A ``SafeLoader`` that also records which nodes carry an anchor (``&name``)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.anchored: set[int] = set()

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: D401 - PyYAML hook
        event = self.peek_event()
        is_alias = isinstance(event, yaml.AliasEvent)
        anchor = getattr(event, "anchor", None)
        node = super().compose_node(parent, index)
        if anchor is not None and not is_alias:
            self.anchored.add(id(node))
        return node


@dataclass
class ComposedFile:
    """One YAML file's node graph, plus which nodes are anchored."""

    root: yaml.Node | None
    anchored: set[int]
    loader: _Loader


def compose_text(text: str, display: str, issues: IssueCollector) -> ComposedFile | None:
    """Compose YAML ``text``; a syntax error becomes one located issue and ``None``."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = e.problem or "invalid YAML"
        context = f" ({e.context})" if e.context else ""
        line_text = text.splitlines()[mark.line] if mark and mark.line < len(text.splitlines()) else ""
        fix = "check the indentation, colons and quoting on this line and the one before it"
        if "'\\t'" in problem:  # found character '\t' that cannot start any token
            fix = "YAML indents with spaces only: replace the tab(s) on this line with spaces"
        elif "${" in line_text and ("{" in problem or "{" in (e.context or "")):
            fix = "inside { } or [ ], quote variable references: write '${d_model}', not ${d_model}"
        issues.add_at(
            Origin(display, mark.line + 1 if mark else None, mark.column + 1 if mark else None, ()),
            (), f"YAML syntax error: {problem}{context}", fix=fix,
        )
        return None
    except yaml.YAMLError as e:  # e.g. a reader error for non-printable characters
        issues.add_at(Origin(display, None, None, ()), (), f"YAML syntax error: {e}",
                      fix="save the manifest as plain UTF-8 YAML")
        return None
    finally:
        loader.dispose()
    return ComposedFile(root, loader.anchored, loader)


class NodeWalker:
    """Turns one composed file into plain data, filling the source map as it goes.

    ``include`` is called for every ``!include`` node with ``(node, data_path,
    source_path, walker)`` and returns the included data; the include machinery lives in
    :mod:`caramba.engine.manifest.includes` so that this class stays about YAML only.
    """

    def __init__(self, composed: ComposedFile, file: Path | None, display: str,
                 smap: SourceMap, issues: IssueCollector, include: Any) -> None:
        self.composed = composed
        self.file = file
        self.display = display
        self.smap = smap
        self.issues = issues
        self.include = include
        self._active: set[int] = set()
        self._walked = 0  # values produced, counting every alias expansion (see MAX_VALUES)

    def origin(self, node: yaml.Node, source_path: YPath) -> Origin:
        mark = node.start_mark
        return Origin(self.display, mark.line + 1, mark.column + 1, source_path)

    def problem(self, node: yaml.Node, source_path: YPath, message: str, fix: str, *, poison: bool = True) -> None:
        """Report a problem at ``node``; ``poison`` silences later echoes about the same value."""
        self.issues.add_at(self.origin(node, source_path), source_path, message, fix=fix)
        if poison:
            self.issues.poison(source_path)

    def walk(self, node: yaml.Node, data_path: YPath, source_path: YPath) -> Any:
        """The plain value of ``node``; ``data_path`` is where it lands in the document."""
        if node.tag == INCLUDE_TAG:
            return self.include(node, data_path, source_path, self)
        self._walked += 1
        if self._walked > MAX_VALUES:  # an alias-of-alias bomb: stop expanding, report once
            if self._walked == MAX_VALUES + 1:
                self.problem(node, source_path, f"the file expands to more than {MAX_VALUES:,} values through "
                             "YAML aliases (aliases of aliases grow exponentially)",
                             "reference each anchor a bounded number of times, or split the manifest with !include")
            return None
        if id(node) in self._active:
            self.problem(node, source_path, "recursive YAML alias: this anchor contains itself",
                         "an anchor may not be referenced inside its own value")
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, data_path, source_path)
            if isinstance(node, yaml.SequenceNode):
                return self._sequence(node, data_path, source_path)
            return self._scalar(node, source_path)
        finally:
            self._active.discard(id(node))

    def _scalar(self, node: yaml.ScalarNode, source_path: YPath) -> Any:
        if node.tag in _PLAIN_TAGS:
            return self.composed.loader.construct_object(node)
        if node.tag == _TIMESTAMP:
            return node.value
        self.problem(node, source_path, f"unsupported YAML tag '{node.tag}'",
                     "manifests use plain YAML values and '!include'; remove the tag")
        return None

    def _sequence(self, node: yaml.SequenceNode, data_path: YPath, source_path: YPath) -> list[Any]:
        if node.tag != "tag:yaml.org,2002:seq":
            self.problem(node, source_path, f"unsupported YAML tag '{node.tag}'",
                         "manifests use plain YAML lists; remove the tag")
        out: list[Any] = []
        for i, item in enumerate(node.value):
            self.smap.set(data_path + (i,), self.origin(item, source_path + (i,)))
            out.append(self.walk(item, data_path + (i,), source_path + (i,)))
        return out

    def mapping_pairs(self, node: yaml.MappingNode, source_path: YPath) -> list[tuple[yaml.Node, yaml.Node]]:
        """The (key, value) node pairs after applying merge keys; reports duplicate keys."""
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:
                continue
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key in seen:
                first = seen[key].start_mark.line + 1
                self.problem(key_node, source_path + (str(key),), f"duplicate key '{key}' (first written on line {first})",
                             "remove one of the two; YAML keeps only the last", poison=False)
            seen[key] = key_node
        try:
            self.composed.loader.flatten_mapping(node)
        except yaml.MarkedYAMLError as e:
            self.problem(node, source_path, f"invalid merge key: {e.problem}",
                         "'<<:' takes an alias of a mapping (<<: *base) or a list of such aliases")
            return [(k, v) for k, v in node.value if k.tag != _MERGE]
        return list(node.value)

    def _mapping(self, node: yaml.MappingNode, data_path: YPath, source_path: YPath) -> dict[str, Any]:
        if node.tag != "tag:yaml.org,2002:map":
            self.problem(node, source_path, f"unsupported YAML tag '{node.tag}'",
                         "manifests use plain YAML mappings and '!include'; remove the tag")
        out: dict[str, Any] = {}
        for key_node, value_node in self.mapping_pairs(node, source_path):
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _PLAIN_TAGS:
                self.problem(key_node, source_path, "mapping keys must be plain scalars",
                             "write keys as plain words, e.g. 'd_model:'")
                continue
            key = str(key_node.value)
            self.smap.set(data_path + (key,), self.origin(key_node, source_path + (key,)))
            out[key] = self.walk(value_node, data_path + (key,), source_path + (key,))
        return out


def describe_position(origin: Origin | None) -> str:
    """``file:line`` for messages that point at a second place (e.g. an include chain)."""
    if origin is None:
        return "<unknown>"
    return f"{origin.file}:{origin.line}" if origin.line else f"{origin.file} ({format_path(origin.path)})"
