"""Input files of a target's dataset, checked before a run directory exists.

A dataset config names its input files in fields called ``path`` or ``<something>_path``
(``dataset.tokens`` ``path``; ``dataset.npy_supervised`` ``x_path``/``y_path``; the graph
and vector datasets likewise). :func:`check_data_files` resolves each one the way the
dataset will (:meth:`caramba.engine.data.base.DataContext.resolve_path`: absolute, else the
manifest's folder, else the workspace) and turns a missing file into a located manifest
error (file:line of that field), so ``caramba run`` stops before it creates a run that can
only fail, and a later ``--resume`` never picks that failed run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from caramba.engine.data.base import DataContext, DataError
from caramba.engine.errors import ManifestError
from caramba.workspace import Workspace


def input_path_fields(config: dict[str, Any]) -> list[str]:
    """The config keys that name input files (``path``, ``*_path``) and are set to a string."""
    return [k for k, v in config.items() if (k == "path" or k.endswith("_path")) and isinstance(v, str) and v]


def check_data_files(manifest: Any, tgt: Any, workspace: Workspace, manifest_dir: Path | None) -> None:
    """Raise one :class:`ManifestError` listing every input file of ``tgt.data`` that is missing."""
    ctx = DataContext(workspace=workspace, manifest_dir=manifest_dir)
    index = manifest.targets.index(tgt)
    issues = []
    for key in input_path_fields(tgt.data.config):
        try:
            ctx.resolve_path(tgt.data.config[key], what=key)
        except DataError as e:
            issues.append(manifest.issue(("targets", index, "data", "config", key), e.message, fix=e.fix))
    if issues:
        raise ManifestError(issues)
