"""MCP resources: presets, the component catalog and run artifacts, readable by URI.

==================================  ===========================================
``caramba://presets``               the preset list (JSON)
``caramba://presets/{name}``        one preset's YAML
``caramba://catalog``               every registered component (JSON)
``caramba://catalog/{family}``      one family (layers, topologies, systems, …)
``caramba://runs/{job_id}/results`` a run's results.json
``caramba://runs/{job_id}/artifacts/{name}``  a text artifact (CSV, JSON, TeX)
``caramba://runs/{job_id}/images/{name}``     a PNG artifact (blob, image/png)
==================================  ===========================================

Errors surface as MCP resource errors with the same actionable messages as the tools.
"""

from __future__ import annotations

import json

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError

from caramba.engine.errors import CarambaError
from caramba.tools import catalog as cat
from caramba.tools.common import ToolDeps, run_blocking
from caramba.tools.run_files import read_json


def register(server: MCPServer, deps: ToolDeps) -> None:
    """Add the resources."""

    async def guarded(fn, *args):  # type: ignore[no-untyped-def]
        try:
            return await run_blocking(fn, *args)
        except CarambaError as e:
            raise ResourceError(e.render()) from e

    @server.resource("caramba://presets", name="presets", mime_type="application/json",
                     description="preset manifests (shipped and in the workspace)")
    async def presets() -> str:
        items = await guarded(cat.list_presets, deps.workspace)
        return json.dumps([p.model_dump() for p in items], indent=1)

    @server.resource("caramba://presets/{name}", name="preset", mime_type="application/yaml",
                     description="the YAML text of one preset")
    async def preset(name: str) -> str:
        path = await guarded(cat.preset_path, deps.workspace, name)
        return path.read_text()

    @server.resource("caramba://catalog", name="catalog", mime_type="application/json",
                     description="every component a manifest can name, with docs and config schemas")
    async def catalog_all() -> str:
        items = await guarded(cat.catalog, None)
        return json.dumps([e.model_dump() for e in items])

    @server.resource("caramba://catalog/{family}", name="catalog-family", mime_type="application/json",
                     description="the components of one family (layers, topologies, systems, datasets, …)")
    async def catalog_family(family: str) -> str:
        items = await guarded(cat.catalog, family)
        return json.dumps([e.model_dump() for e in items])

    def _run_dir(job_id: str):  # type: ignore[no-untyped-def]
        rec = deps.jobs.get(job_id)
        run_dir = deps.jobs.run_dir(rec)
        if run_dir is None:
            raise CarambaError(f"job '{job_id}' has no run directory yet (state {rec.state})")
        return run_dir

    @server.resource("caramba://runs/{job_id}/results", name="run-results", mime_type="application/json",
                     description="results.json of a run")
    async def run_results(job_id: str) -> str:
        run_dir = await guarded(_run_dir, job_id)
        data = read_json(run_dir / "results.json")
        if data is None:
            raise ResourceError(f"run '{job_id}' has not written results.json yet")
        return json.dumps(data, indent=1)

    def _artifact(job_id: str, name: str, png: bool) -> str | bytes:
        run_dir = _run_dir(job_id)
        art = (run_dir / "artifacts").resolve()
        full = (art / name).resolve()
        if not full.is_relative_to(art) or not full.is_file():
            raise CarambaError(f"run '{job_id}' has no artifact '{name}'", fix="get_results lists the artifacts")
        if (full.suffix.lower() == ".png") != png:
            raise CarambaError(f"'{name}' is {'not ' if png else ''}a PNG",
                               fix=f"read it as caramba://runs/{job_id}/{'artifacts' if png else 'images'}/{name}")
        limit = deps.sandbox.limits.max_image_bytes if png else deps.sandbox.limits.max_read_bytes
        if full.stat().st_size > limit:
            raise CarambaError(f"artifact '{name}' is larger than {limit} bytes",
                               fix="fetch it with read_file in pages (offset), or look at it on disk")
        return full.read_bytes() if png else full.read_text(errors="replace")

    @server.resource("caramba://runs/{job_id}/artifacts/{name}", name="run-artifact", mime_type="text/plain",
                     description="a text artifact of a run (CSV, JSON, TeX)")
    async def run_artifact(job_id: str, name: str) -> str:
        return await guarded(_artifact, job_id, name, False)

    @server.resource("caramba://runs/{job_id}/images/{name}", name="run-image", mime_type="image/png",
                     description="a PNG artifact of a run (e.g. loss_curve.png)")
    async def run_image(job_id: str, name: str) -> bytes:
        return await guarded(_artifact, job_id, name, True)
