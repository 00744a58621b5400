"""Manifest routes: presets, the component catalog, validation and dry-run.

These mirror the MCP manifest tools and call the same code
(:mod:`caramba.tools.group_manifests`, :mod:`caramba.tools.manifest_input`):

* ``GET /api/presets`` and ``GET /api/presets/{name}`` (the YAML text);
* ``GET /api/catalog?family=layers&name=RMSNormLayer&with_schema=true``;
* ``POST /api/manifests/validate`` ``{path | text, overrides}`` → 200 ``{ok: true, name,
  targets}`` or **422** ``{ok: false, issues: [{file, line, column, path, message,
  expected, found, fix}], message}``;
* ``POST /api/manifests/dry-run`` ``{path | text, target, overrides}`` → the plan (targets,
  runs, model trees with parameter counts; built on the meta device). A bad manifest is a
  422 with the same ``issues`` list.

A manifest is given either as a workspace path (``manifests/x.yml`` or ``preset:<name>``)
or as YAML text; text is validated as ``manifests/<name>.yml`` of the workspace.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from caramba.api.app import get_deps
from caramba.api.errors import NotFound, relative_files
from caramba.tools import catalog as cat
from caramba.tools.catalog import CatalogEntry, Family, Preset
from caramba.tools.common import ToolDeps, run_blocking
from caramba.tools.group_manifests import Validation, _dry_run, _validate

router = APIRouter(tags=["manifests"])


class ManifestRef(BaseModel):
    """A manifest by workspace path or by text (exactly one), plus ``--set`` overrides."""

    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(None, description="manifest file relative to the workspace, or 'preset:<name>'")
    text: str | None = Field(None, description="manifest YAML text (instead of path)")
    overrides: list[str] = Field(default_factory=list, description="'dotted.path=value', applied like --set")


class DryRunRequest(ManifestRef):
    target: str | None = Field(None, description="target or entrypoint; default: the manifest's default")


class PresetText(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    text: str


@router.get("/presets", response_model=list[Preset])
async def list_presets(deps: ToolDeps = Depends(get_deps)) -> list[Preset]:
    """Preset manifests: shipped with caramba and in the workspace's manifests/ folder."""
    return await run_blocking(cat.list_presets, deps.workspace)


@router.get("/presets/{name}", response_model=PresetText)
async def get_preset(name: str, deps: ToolDeps = Depends(get_deps)) -> PresetText:
    """The YAML text of one preset."""
    path = await run_blocking(cat.preset_path, deps.workspace, name)
    return PresetText(name=name, text=path.read_text())


@router.get("/catalog", response_model=list[CatalogEntry])
async def layer_catalog(family: Family | None = None,
                        name: str | None = Query(None, description="only this component (name or alias)"),
                        with_schema: bool = False) -> list[CatalogEntry]:
    """Components a manifest can name (layers, topologies, systems, datasets, …) with their
    docs and config fields."""
    entries = await run_blocking(cat.catalog, family, with_schema=with_schema)
    if name is not None:
        found = cat.named(entries, name)
        if not found:
            raise NotFound(f"no component named '{name}'" + (f" in {family}" if family else ""),
                           fix=cat.did_you_mean(entries, name) + "GET /api/catalog without 'name' lists every component")
        entries = found
    return entries


@router.post("/manifests/validate", response_model=Validation,
             responses={422: {"model": Validation, "description": "the manifest has problems (all listed)"}})
async def validate_manifest(body: ManifestRef, deps: ToolDeps = Depends(get_deps)) -> Any:
    """Validate a manifest: ok, or **every** problem with file, line, YAML path and a fix (422)."""
    result = await run_blocking(_validate, deps, body.path, body.text, body.overrides)
    if not result.ok:
        data = result.model_dump(mode="json")
        relative_files(data["issues"], deps.workspace.root)
        return JSONResponse(data, status_code=422)
    return result


@router.post("/manifests/dry-run")
async def dry_run_manifest(body: DryRunRequest, deps: ToolDeps = Depends(get_deps)) -> dict[str, Any]:
    """Compile without running: targets, runs and model trees with parameter counts."""
    plan = await run_blocking(_dry_run, deps, body.path, body.text, body.target, body.overrides)
    return plan.plan
