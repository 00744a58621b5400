"""Manifest tools: presets, the component catalog, validation, dry-run, writing.

``validate_manifest`` is the one tool that *returns* problems instead of raising: a bad
manifest is its normal answer (``ok: false`` plus every issue with file, line, YAML
path, expected/found and a fix). The other tools raise, so a bad manifest reaches the
client as an ``isError`` result with the same rendered issues.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from caramba.engine.errors import CarambaError, ManifestError
from caramba.tools import manifest_input
from caramba.tools import catalog as cat
from caramba.tools.catalog import CatalogEntry, Family, Preset
from caramba.tools.common import ToolDeps, run_blocking, tool_errors

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
PathArg = Annotated[str | None, Field(description="manifest file relative to the workspace, or 'preset:<name>'")]
TextArg = Annotated[str | None, Field(description="manifest YAML text (instead of path)")]
OverridesArg = Annotated[list[str], Field(description="overrides 'dotted.path=value', applied like --set")]


class PresetList(BaseModel):
    model_config = ConfigDict(extra="forbid")
    presets: list[Preset]


class PresetText(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    text: str


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid")
    components: list[CatalogEntry]


class Issue(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    path: str = Field("", description="YAML path, e.g. targets[0].system.config.model.topology.layers[1].d_model")
    expected: str | None = None
    found: str | None = None
    fix: str | None = None


class Validation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ok: bool
    name: str | None = Field(None, description="the manifest's name (when valid)")
    targets: list[str] = Field(default_factory=list, description="target names (when valid)")
    issues: list[Issue] = Field(default_factory=list)
    message: str = Field("", description="all issues rendered as text")


class DryRun(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plan: dict[str, Any] = Field(description="the plan: targets, runs, model trees with parameter counts")


class Written(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    bytes: int
    name: str
    targets: list[str]


def _validate(deps: ToolDeps, path: str | None, text: str | None, overrides: list[str]) -> Validation:
    try:
        m = manifest_input.load(deps, path, text, overrides)
    except ManifestError as e:
        return Validation(ok=False, issues=[Issue(**i.to_dict()) for i in e.issues], message=e.render())
    return Validation(ok=True, name=m.name, targets=[t.name for t in m.targets])


def _dry_run(deps: ToolDeps, path: str | None, text: str | None, target: str | None,
             overrides: list[str]) -> DryRun:
    from caramba.engine.plan import make_plan

    m = manifest_input.load(deps, path, text, overrides)
    return DryRun(plan=make_plan(m, target).to_dict())


def _write(deps: ToolDeps, path: str, text: str, overwrite: bool) -> Written:
    if not path.startswith("manifests/") or not path.endswith((".yml", ".yaml")):
        raise CarambaError(f"'{path}' is not a manifest path under manifests/",
                           fix="use a path like 'manifests/my_experiment.yml'")
    dst = deps.sandbox.resolve(path)
    if dst.exists() and not overwrite:
        raise CarambaError(f"'{path}' already exists", fix="pass overwrite=true to replace it, or pick another name")
    m = manifest_input.load(deps, None, text, name=dst.stem)  # validated before anything is written
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, dst)
    return Written(path=deps.sandbox.rel(dst), bytes=len(text.encode()), name=m.name,
                   targets=[t.name for t in m.targets])


def register(server: MCPServer, deps: ToolDeps) -> None:
    """Add the manifest tools."""

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def list_presets() -> PresetList:
        """List the preset manifests (shipped with caramba and in the workspace's manifests/)."""
        return PresetList(presets=await run_blocking(cat.list_presets, deps.workspace))

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def get_preset(name: Annotated[str, Field(description="preset name, from list_presets")]) -> PresetText:
        """Return the YAML text of a preset manifest."""
        p = await run_blocking(cat.preset_path, deps.workspace, name)
        return PresetText(name=name, text=p.read_text())

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def layer_catalog(
        family: Annotated[Family | None, Field(description="one component family, or all when omitted")] = None,
        name: Annotated[str | None, Field(description="only this component (name or alias)")] = None,
        with_schema: Annotated[bool, Field(description="add each config's full JSON schema")] = False,
    ) -> Catalog:
        """List the components a manifest can name (layers, topologies, systems, datasets, …)
        with their docs and config fields."""
        entries = await run_blocking(cat.catalog, family, with_schema=with_schema)
        if name is not None:
            found = cat.named(entries, name)
            if not found:
                raise CarambaError(f"no component named '{name}'" + (f" in {family}" if family else ""),
                                   fix=cat.did_you_mean(entries, name)
                                   + "call layer_catalog without 'name' to see every component")
            entries = found
        return Catalog(components=entries)

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def validate_manifest(path: PathArg = None, text: TextArg = None, overrides: OverridesArg = []) -> Validation:  # noqa: B006
        """Validate a manifest: ok, or every problem with file, line, YAML path and a fix."""
        return await run_blocking(_validate, deps, path, text, overrides)

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def dry_run_manifest(
        path: PathArg = None, text: TextArg = None,
        target: Annotated[str | None, Field(description="target or entrypoint name; default: the manifest's default")] = None,
        overrides: OverridesArg = [],  # noqa: B006
    ) -> DryRun:
        """Compile a manifest without running it: the plan with model trees and parameter counts
        (built on the meta device, no memory or data needed)."""
        return await run_blocking(_dry_run, deps, path, text, target, overrides)

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False))
    @tool_errors
    async def write_manifest(
        path: Annotated[str, Field(description="destination under manifests/, e.g. 'manifests/ablation.yml'")],
        text: Annotated[str, Field(description="the manifest YAML; validated before it is written")],
        overwrite: Annotated[bool, Field(description="replace an existing file")] = False,
    ) -> Written:
        """Validate a manifest and save it into the workspace's manifests/ folder (atomically)."""
        return await run_blocking(_write, deps, path, text, overwrite)
