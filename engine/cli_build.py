"""``caramba layers [TYPE]`` and ``caramba presets``: the catalog, from the registries.

``caramba layers`` lists every registered layer, topology, model, embedder, initializer
and system with its aliases and one-line summary; ``caramba layers AttentionLayer``
shows that component's config fields — type, default, description — straight from its
pydantic ``Config`` (so the catalog can never drift from what validation accepts).
``caramba presets`` lists the shipped ``manifests/*.yml`` with their ``name`` and
``notes``. Both take ``--json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from caramba.engine.manifest.document import SHIPPED_MANIFESTS


def register(app: typer.Typer) -> None:
    """Add ``layers`` and ``presets`` to the root app."""

    @app.command("layers")
    def layers_cmd(
        type_name: Annotated[str | None, typer.Argument(metavar="TYPE", help="a component name or alias")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    ) -> None:
        """List the catalog (layers, models, systems, datasets, trainers, manifest sections), or one entry."""
        from caramba.engine.catalog import catalog, describe_component

        console = Console(soft_wrap=False, width=max(Console().width, 120))
        if type_name is None:
            rows = catalog()
            if as_json:
                typer.echo(json.dumps(rows, indent=2))
                return
            table = Table(title="caramba components (caramba layers TYPE for fields)")
            for col in ("name", "family", "aliases", "summary"):
                table.add_column(col, overflow="fold")
            for r in rows:
                table.add_row(r["name"], r["family"], ", ".join(r["aliases"]), r["summary"])
            console.print(table)
            return
        info = describe_component(type_name)
        if as_json:
            typer.echo(json.dumps(info, indent=2, default=str))
            return
        _print_component(console, info)

    @app.command("presets")
    def presets_cmd(
        as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    ) -> None:
        """List the shipped manifests (manifests/*.yml) with their name and notes."""
        rows = list_presets(SHIPPED_MANIFESTS)
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        table = Table(title=f"presets in {SHIPPED_MANIFESTS}")
        for col in ("file", "name", "notes"):
            table.add_column(col, overflow="fold")
        for r in rows:
            table.add_row(r["file"], r["name"] or "-", r["notes"] or r.get("error") or "")
        Console(width=max(Console().width, 120)).print(table)
        if not rows:
            typer.echo(f"no presets found in {SHIPPED_MANIFESTS}")


def _print_component(console: Console, info: dict[str, Any]) -> None:
    aliases = f"  (aliases: {', '.join(info['aliases'])})" if info["aliases"] else ""
    console.print(f"[bold]{info['name']}[/] — {info['family']}{aliases}")
    if info["doc"]:
        console.print(info["doc"], highlight=False)
    console.print(_fields_table("config fields", info["fields"]))
    for variant in info.get("variants", []):
        extra = variant["extra_fields"]
        title = f"{info['variant_field']}: {variant['name']}"
        if extra:
            console.print(_fields_table(f"{title} — additional fields", extra))
        else:
            console.print(f"{title} — no additional fields")


def _fields_table(title: str, fields: list[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("field", "type", "default", "description"):
        table.add_column(col, overflow="fold")
    for f in fields:
        default = "(required)" if f["required"] else json.dumps(f["default"], default=str)
        table.add_row(f["name"], f["type"], default, f["description"] or "")
    return table


def list_presets(directory: Path) -> list[dict[str, Any]]:
    """``[{file, name, notes}]`` for ``directory/*.yml`` (unreadable files carry ``error``)."""
    import yaml

    rows: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yml")) + sorted(directory.glob("*.yaml")):
        row: dict[str, Any] = {"file": str(path.relative_to(directory.parent)), "name": None, "notes": None}
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as e:
            row["error"] = f"unreadable: {str(e).splitlines()[0]}"
            rows.append(row)
            continue
        if isinstance(data, dict):
            row["name"] = data.get("name")
            notes = data.get("notes")
            row["notes"] = " ".join(str(notes).split()) if notes else None
        rows.append(row)
    return rows
