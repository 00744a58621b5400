"""Engine commands, each group in its own module so that separate pieces of work never
edit one file: ``cli_manifest`` (validate), ``cli_build`` (layers, presets),
``cli_run`` (run, including ``--dry-run``).

Keep module-level imports light (typer, rich): heavy libraries load inside commands.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the engine's commands to the root app."""
    from caramba.engine import cli_build, cli_manifest, cli_run

    cli_run.register(app)
    cli_manifest.register(app)
    cli_build.register(app)
