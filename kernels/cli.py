"""Commands of `caramba.kernels` (added to the root `caramba` command by `register`).

    caramba kernels            # the dispatch table of this machine, one line per op

Keep module-level imports light (typer, rich): heavy libraries load inside commands.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this component's commands to the root app."""

    @app.command("kernels")
    def kernels() -> None:
        """Print which implementation runs each operation on this machine (* = not the fastest path)."""
        from caramba.kernels.dispatch import render_table

        typer.echo(render_table())
