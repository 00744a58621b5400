"""A tiny package + manifest in a workspace, for code-graph round trips (MCP and REST).

``write_toy_package(root, models)`` writes ``toy/__init__.py``, ``toy/models.py`` (the
given source) and ``toy/toy.yml`` (a manifest using ``SSMLayer``, for layer usage)."""

from __future__ import annotations

from pathlib import Path

TOY_MANIFEST = """\
version: 2
name: toy
targets:
  - type: experiment
    name: t
    system:
      config:
        model:
          topology:
            type: StackedTopology
            layers:
              - {type: SSMLayer, d_model: 8}
"""


def write_toy_package(root: Path, models: str) -> Path:
    """Write the toy package under ``root``; returns its folder."""
    pkg = root / "toy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "models.py").write_text(models)
    (pkg / "toy.yml").write_text(TOY_MANIFEST)
    return pkg
