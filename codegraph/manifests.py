"""YAML manifests → which layer/topology/model types they use (without importing the engine).

A YAML file is a manifest when its top level is a mapping with ``targets``. Every
``type:`` whose value is a registry-style CamelCase name (``AttentionLayer``,
``StackedTopology``, ``TransformerModel``) is a use; lower-case kinds (``type: experiment``,
``type: token``) are not registry types and are skipped. Lines come from the YAML node
positions, so "which manifests use SSMLayer" can point at the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from caramba.codegraph.parse import content_hash

_TYPE_NAME = re.compile(r"^[A-Z][A-Za-z0-9_]*$")


@dataclass
class ManifestFacts:
    path: str
    sha: str
    lines: int
    is_manifest: bool = False
    name: str = ""
    uses: list[tuple[str, int]] = field(default_factory=list)  # (type name, 1-based line)
    error: tuple[int, str] | None = None


def parse_manifest(data: bytes, *, path: str) -> ManifestFacts:
    text = data.decode("utf-8", errors="replace")
    facts = ManifestFacts(path=path, sha=content_hash(data), lines=text.count("\n") + 1)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        facts.error = ((mark.line + 1) if mark else 0, str(getattr(e, "problem", None) or e))
        return facts
    if not isinstance(root, yaml.MappingNode):
        return facts
    keys = {k.value: v for k, v in root.value if isinstance(k, yaml.ScalarNode)}
    if "targets" not in keys:
        return facts
    facts.is_manifest = True
    name = keys.get("name")
    facts.name = name.value if isinstance(name, yaml.ScalarNode) else path
    stack: list[yaml.Node] = [root]
    seen: set[int] = set()  # an alias (*name) is the anchored node itself: walk it once, or a
    while stack:            # 25-line "billion laughs" file would take hours (and list duplicates)
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if (isinstance(k, yaml.ScalarNode) and k.value == "type" and isinstance(v, yaml.ScalarNode)
                        and _TYPE_NAME.match(v.value)):
                    facts.uses.append((v.value, v.start_mark.line + 1))
                stack.append(v)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    facts.uses.sort(key=lambda u: u[1])
    return facts

