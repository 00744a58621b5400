"""``caramba validate FILE``: check a manifest and report every problem at once.

::

    caramba validate manifests/standard_transformer.yml
    caramba validate my.yml --set targets[0].runs[0].steps=5 --set vars.d_model=256
    caramba validate my.yml --json        # {"ok": false, "issues": [ManifestIssue dicts]}

Exit codes: 0 valid, 2 invalid (each problem printed with file:line:column, YAML path,
expected/found and a fix — never a traceback).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add ``validate`` to the root app."""
    app.command("validate")(validate)


def validate(
    file: Annotated[Path, typer.Argument(help="the manifest to check", show_default=False)],
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="override a value: dotted.path=value (e.g. targets[0].runs[0].steps=5); repeatable")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON report instead of text")] = False,
    allow_python_impl: Annotated[bool, typer.Option(
        "--allow-python-impl", help="permit impl: python:module:Symbol (runs code the manifest names)")] = False,
) -> None:
    """Validate a manifest: schema, variables, includes, components and tensor widths."""
    from rich.console import Console
    from rich.markup import escape

    from caramba.engine.errors import ManifestError
    from caramba.engine.manifest import ExperimentTarget, load_manifest

    try:
        manifest = load_manifest(file, overrides=set_ or [], allow_python_impl=allow_python_impl)
    except ManifestError as e:
        if as_json:
            typer.echo(json.dumps({"ok": False, "file": str(file), "issues": [i.to_dict() for i in e.issues]}, indent=2))
        else:
            Console(stderr=True, highlight=False, soft_wrap=True).print(
                f"[bold red]error:[/] {escape(e.render())}", markup=True)
        raise typer.Exit(2) from None

    targets = [
        {"name": t.name, "type": t.type,
         "runs": [r.id for r in t.runs] if isinstance(t, ExperimentTarget) else []}
        for t in manifest.targets
    ]
    if as_json:
        typer.echo(json.dumps({"ok": True, "file": str(file), "name": manifest.name,
                               "targets": targets, "issues": []}, indent=2))
        return
    parts = [f"{t['name']} ({t['type']}{', ' + str(len(t['runs'])) + ' runs' if t['runs'] else ''})" for t in targets]
    typer.echo(f"ok: {file} — manifest '{manifest.name}', {len(targets)} target(s): {', '.join(parts)}")
