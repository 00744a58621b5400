"""Commands of `caramba.api` (added to the root `caramba` command by `register`).

Keep module-level imports light (typer, rich): heavy libraries load inside commands.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this component's commands to the root app."""
