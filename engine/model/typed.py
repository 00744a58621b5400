"""Parse a ``{type: Name, …fields}`` mapping (or a bare ``Name``) against a registry.

Used for the parts of a model that are picked by ``type`` from a registry: the model
itself (MODELS), its embedder (EMBEDDERS) and its initializer (INITIALIZERS). Problems
are appended with exact paths; unknown names carry a did-you-mean.
"""

from __future__ import annotations

from typing import Any

from caramba.engine.errors import ConfigProblem
from caramba.engine.layers.problems import Path, validate
from caramba.engine.registry import Registry, UnknownComponent


def parse_typed(registry: Registry[Any], raw: Any, path: Path, problems: list[ConfigProblem]) -> tuple[Any, Any] | None:
    """``(class, validated config)`` for ``raw``, or ``None`` with problems appended."""
    if isinstance(raw, str):
        name, fields = raw, {}
    elif isinstance(raw, dict):
        name, fields = raw.get("type"), {k: v for k, v in raw.items() if k != "type"}
    else:
        problems.append(ConfigProblem(path, f"expected a {registry.family} name or a mapping with 'type'",
                                      expected="mapping", found=repr(raw)[:60],
                                      fix=f"write {{type: {next(iter(registry.names()), 'Name')}, ...}}"))
        return None
    if not isinstance(name, str):
        problems.append(ConfigProblem(path + ("type",), f"missing the {registry.family}",
                                      expected=" | ".join(registry.names()),
                                      fix=f"add type: one of {', '.join(registry.names())}"))
        return None
    if name not in registry:
        e = UnknownComponent(registry.family, name, [*registry.names(), *registry.aliases()])
        problems.append(ConfigProblem(path + ("type",) if isinstance(raw, dict) else path, e.message,
                                      expected=" | ".join(registry.names()), found=name, fix=e.fix))
        return None
    cls = registry.get(name)
    config = validate(cls.Config, fields, path, problems)
    return None if config is None else (cls, config)
