"""``!include``: splice a YAML fragment from another file into a manifest.

Two forms, both relative to the file that contains the tag::

    block: !include blocks/llama_block.yml
    block: !include {path: blocks/llama_block.yml, vars: {d_model: 256}}

The second form substitutes ``${name}`` in the fragment from its own ``vars`` first;
names it does not define are left for the manifest's ``vars``. Fragments may include
other fragments.

Safety: a fragment must lie inside the manifest's **project root** — the nearest folder
at or above the manifest's own folder that holds ``pyproject.toml`` or ``.git``; when
there is none, the manifest's own folder. Paths are resolved (symlinks followed) before
the check, so ``../`` tricks and links pointing out are refused. A file that includes
itself, directly or through others, is an include cycle and the error shows the chain.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from caramba.engine.manifest.source import IssueCollector, SourceMap, YPath
from caramba.engine.manifest.variables import VarResolver
from caramba.engine.manifest.yaml_loader import NodeWalker, compose_text

PROJECT_MARKERS = ("pyproject.toml", ".git")


def project_root(manifest_dir: Path) -> Path:
    """The folder includes may not leave (see the module docstring)."""
    start = manifest_dir.resolve()
    for candidate in (start, *start.parents):
        if any((candidate / marker).exists() for marker in PROJECT_MARKERS):
            return candidate
    return start


class IncludeHandler:
    """Resolves ``!include`` nodes of one file; ``chain`` is the files that led here."""

    def __init__(self, root: Path, smap: SourceMap, issues: IssueCollector,
                 chain: tuple[tuple[Path, str], ...]) -> None:
        self.root = root
        self.smap = smap
        self.issues = issues
        self.chain = chain

    def _fail(self, walker: NodeWalker, node: yaml.Node, source_path: YPath, message: str, fix: str) -> None:
        walker.problem(node, source_path, message, fix)
        self.issues.poison(source_path)

    def _spec(self, node: yaml.Node, source_path: YPath, walker: NodeWalker) -> tuple[str, dict[str, Any]] | None:
        """(relative path, vars) from ``!include path`` or ``!include {path, vars}``."""
        usage = "write '!include fragment.yml' or '!include {path: fragment.yml, vars: {name: value}}'"
        if isinstance(node, yaml.ScalarNode):
            rel, inc_vars = node.value, {}
        elif isinstance(node, yaml.MappingNode):
            scratch = NodeWalker(walker.composed, walker.file, walker.display, SourceMap(), self.issues, self)
            spec: dict[str, Any] = {}
            for key_node, value_node in scratch.mapping_pairs(node, source_path):
                key = str(key_node.value)
                if key not in ("path", "vars"):
                    self._fail(walker, key_node, source_path + (key,), f"unknown !include field '{key}'", usage)
                    return None
                spec[key] = scratch.walk(value_node, source_path + (key,), source_path + (key,))
            rel, inc_vars = spec.get("path"), spec.get("vars") or {}
            if not isinstance(inc_vars, dict):
                self._fail(walker, node, source_path, "!include 'vars' must be a mapping", usage)
                return None
        else:
            self._fail(walker, node, source_path, "!include takes a path or {path, vars}", usage)
            return None
        if not isinstance(rel, str) or not rel.strip():
            self._fail(walker, node, source_path, "!include needs a file path", usage)
            return None
        return rel, inc_vars

    def __call__(self, node: yaml.Node, data_path: YPath, source_path: YPath, walker: NodeWalker) -> Any:
        spec = self._spec(node, source_path, walker)
        if spec is None:
            return None
        rel, inc_vars = spec
        base = walker.file.parent if walker.file is not None else Path.cwd()
        target = (base / rel).resolve()
        display = os.path.normpath(os.path.join(os.path.dirname(walker.display), rel))
        if not target.is_relative_to(self.root):
            self._fail(walker, node, source_path,
                       f"!include '{rel}' resolves to {target}, outside the project root {self.root}",
                       f"move the fragment under {self.root}; includes may not leave the manifest's project "
                       "(the nearest folder with pyproject.toml or .git, else the manifest's folder)")
            return None
        files = [p for p, _ in self.chain]
        if target in files:
            names = [d for _, d in self.chain[files.index(target):]] + [display]
            self._fail(walker, node, source_path, f"include cycle: {' -> '.join(names)}",
                       "remove one of these includes; a fragment may not include itself")
            return None
        if not target.is_file():
            self._fail(walker, node, source_path, f"included file not found: '{rel}' (looked for {target})",
                       "check the path; it is relative to the file that contains the !include")
            return None
        try:
            text = target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            self._fail(walker, node, source_path, f"cannot read included file '{rel}': {e}",
                       "make it a readable UTF-8 YAML file")
            return None
        composed = compose_text(text, display, self.issues)
        if composed is None:
            self.issues.poison(source_path)
            return None
        if composed.root is None:
            self._fail(walker, node, source_path, f"included file '{rel}' is empty",
                       "put the YAML value to include in it")
            return None
        child = IncludeHandler(self.root, self.smap, self.issues, self.chain + ((target, display),))
        fragment_walker = NodeWalker(composed, target, display, self.smap, self.issues, child)
        value = fragment_walker.walk(composed.root, data_path, source_path)
        if inc_vars:
            resolver = VarResolver(inc_vars, self.issues, None, partial=True, where=source_path + ("vars",))
            resolver.raw = resolver.resolve_all()
            value = resolver.substitute(value, data_path)
        return value
