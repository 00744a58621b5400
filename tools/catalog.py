"""Presets and the component catalog, as plain data (shared by tools and resources).

* Presets are the manifests shipped in caramba's ``manifests/`` folder plus the ones in
  the workspace's own ``manifests/`` folder (the workspace wins on a name clash).
* The catalog lists every registered component of every registry family (docs/internals.md
  "Registries") with its docstring and the JSON schema of its pydantic ``Config``, and the
  manifest's own sections (family ``sections``: ``train``, ``run``, ``defaults.*``, …).
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from caramba.engine.errors import CarambaError
from caramba.engine.manifest.document import SHIPPED_MANIFESTS
from caramba.workspace import Workspace


Family = Literal["layers", "topologies", "models", "embedders", "initializers", "systems",
                 "datasets", "objectives", "trainers", "tasks", "sections"]


class Preset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="preset name (file name without .yml)")
    path: str = Field(description="where it lives: 'manifests/<name>.yml' in the workspace or the shipped copy")
    origin: Literal["workspace", "shipped"]
    description: str = Field(description="the header comment of the file")


class CatalogEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    family: str
    name: str
    aliases: list[str] = Field(default_factory=list)
    doc: str = Field(description="the component's docstring")
    fields: list[dict[str, Any]] = Field(default_factory=list,
                                         description="config fields: name, type, required, default, description")
    config_schema: dict[str, Any] | None = Field(None, description="full JSON schema of its Config (with_schema)")


class PresetError(CarambaError):
    """An unknown preset name."""


def _header(path: Path) -> str:
    lines: list[str] = []
    for line in path.read_text(errors="replace").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return "\n".join(lines).strip()


def presets(workspace: Workspace) -> dict[str, Path]:
    """name → file, shipped presets first, then the workspace's (which override)."""
    found: dict[str, Path] = {}
    for folder in (SHIPPED_MANIFESTS, workspace.root / "manifests"):
        if folder.is_dir():
            for p in sorted(folder.glob("*.yml")):
                found[p.stem] = p
    return found


def list_presets(workspace: Workspace) -> list[Preset]:
    out = []
    for name, path in sorted(presets(workspace).items()):
        inside = path.is_relative_to(workspace.root)
        shown = str(path.relative_to(workspace.root)) if inside else f"<caramba>/manifests/{path.name}"
        out.append(Preset(name=name, path=shown, origin="workspace" if inside else "shipped",
                          description=_header(path)))
    return out


def preset_path(workspace: Workspace, name: str) -> Path:
    found = presets(workspace)
    if name not in found:
        raise PresetError(f"no preset named '{name}'",
                          fix=f"available presets: {', '.join(sorted(found)) or '(none)'}")
    return found[name]


def catalog(family: str | None = None, *, with_schema: bool = False) -> list[CatalogEntry]:
    """Every registered component (of one family, or of all) and, as family ``sections``,
    the manifest's own blocks (``train``, ``run``, ``defaults.*``, …); ``with_schema`` adds
    the full JSON schema of each config to the compact field list."""
    from caramba.engine.catalog import FAMILIES, registry
    from caramba.engine.catalog_sections import sections

    known = [*FAMILIES, "sections"]
    chosen = [family] if family else known
    out: list[CatalogEntry] = []
    for fam in chosen:
        if fam not in known:
            raise CarambaError(f"unknown component family '{fam}'", fix=f"one of: {', '.join(known)}")
        if fam == "sections":
            out += [_entry(fam, name, model, model, [], with_schema) for name, model in sections().items()]
            continue
        reg = registry(fam)
        aliases: dict[str, list[str]] = {}
        for alias, canonical in reg.aliases().items():
            aliases.setdefault(canonical, []).append(alias)
        out += [_entry(fam, name, obj, getattr(obj, "Config", None), sorted(aliases.get(name, [])), with_schema)
                for name, obj in reg.items()]
    return out


def _entry(family: str, name: str, obj: Any, cfg: Any, aliases: list[str], with_schema: bool) -> CatalogEntry:
    """One catalog row: ``obj``'s docstring and the fields of its pydantic config ``cfg``."""
    from caramba.engine.catalog import config_fields

    is_model = isinstance(cfg, type) and issubclass(cfg, BaseModel)
    return CatalogEntry(family=family, name=name, aliases=aliases, doc=inspect.cleandoc(obj.__doc__ or ""),
                        fields=_jsonable(config_fields(cfg)) if is_model else [],
                        config_schema=cfg.model_json_schema() if is_model and with_schema else None)


def _jsonable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Field rows with defaults that JSON can carry (others shown as their repr)."""
    out = []
    for row in rows:
        try:
            json.dumps(row["default"])
        except TypeError:
            row = {**row, "default": repr(row["default"])}
        out.append(row)
    return out


def named(entries: list[CatalogEntry], name: str) -> list[CatalogEntry]:
    """The entries called ``name`` (or with it as an alias); case is ignored when nothing
    matches exactly (``attentionlayer`` finds ``AttentionLayer``)."""
    exact = [e for e in entries if name == e.name or name in e.aliases]
    if exact:
        return exact
    low = name.lower()
    return [e for e in entries if low == e.name.lower() or low in (a.lower() for a in e.aliases)]


def did_you_mean(entries: list[CatalogEntry], name: str) -> str:
    """``"did you mean 'X'? "`` for the closest names and aliases, or ``""``."""
    import difflib

    owner = {n.lower(): e.name for e in entries for n in (e.name, *e.aliases)}  # alias → its entry
    close = difflib.get_close_matches(name.lower(), list(owner), n=6, cutoff=0.6)
    picks = list(dict.fromkeys(owner[c] for c in close))[:3]
    return f"did you mean {' or '.join(repr(n) for n in picks)}? " if picks else ""
