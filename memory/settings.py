"""Which memory configuration applies: ``caramba.yml`` with a manifest's ``defaults.memory``
merged over it, per field.

The workspace file says how memory works for everything in the workspace; a manifest
may change it for its own runs and processes (a different group per research project,
memory on for one sweep only, another extraction LLM)::

    cfg = memory_config(ws, manifest.defaults.memory)   # a loaded Manifest
    cfg = run_memory_config(ws, run_dir)                # a finished run: its manifest.yml
    cfg.memory.enabled, cfg.memory.group_id, cfg.llm.model, cfg.falkordb.url

A run directory's ``manifest.yml`` is the resolved manifest the run executed, so a run
is recorded with the settings it ran with even if the manifest file changed since. This
module is light (YAML + pydantic): the ``caramba run`` finish hook imports it to decide
whether to load Graphiti at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from caramba.engine.errors import first_error
from caramba.workspace import CarambaConfig, MemoryDefaults, Workspace, WorkspaceError


def memory_config(ws: Workspace, defaults: MemoryDefaults | None = None) -> CarambaConfig:
    """``caramba.yml`` with ``defaults`` (a manifest's ``defaults.memory``) merged over it."""
    return ws.config().with_memory(defaults)


def manifest_memory(manifest_file: Path) -> MemoryDefaults | None:
    """``defaults.memory`` of a resolved manifest file (None when it sets none).

    The file was validated when the run started; a problem here means it was edited
    since, reported with the file and field."""
    try:
        raw: Any = yaml.safe_load(manifest_file.read_text())
    except OSError as e:
        raise WorkspaceError(f"cannot read {manifest_file}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise WorkspaceError(f"{manifest_file}: not valid YAML: {e}",
                             fix="restore the run's resolved manifest (it is written by `caramba run`)") from None
    defaults = raw.get("defaults") if isinstance(raw, dict) else None
    section = defaults.get("memory") if isinstance(defaults, dict) else None
    if section is None:
        return None
    try:
        return MemoryDefaults.model_validate(section)
    except ValidationError as e:
        where, first = first_error(e)
        raise WorkspaceError(f"{manifest_file}: defaults.memory.{where}: {first['msg']}",
                             fix="correct defaults.memory in the run's manifest.yml "
                                 "(fields as in caramba.yml's memory section, plus llm and falkordb)") from None


def run_memory_config(ws: Workspace, run_dir: Path) -> CarambaConfig:
    """The memory configuration a run was made with: ``caramba.yml`` + the
    ``defaults.memory`` of the run directory's ``manifest.yml`` (if it has one)."""
    f = Path(run_dir) / "manifest.yml"
    return memory_config(ws, manifest_memory(f) if f.is_file() else None)
