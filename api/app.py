"""The FastAPI application behind ``caramba serve``: REST API + dashboard in one process.

    from caramba.api.app import ApiOptions, create_app
    app = create_app(ApiOptions(workspace="/path/to/ws"))   # any ASGI server can run it

Routes (OpenAPI at ``/docs``, schema at ``/openapi.json``):

* ``/api/presets``, ``/api/catalog``, ``/api/manifests/validate``, ``/api/manifests/dry-run``
  (:mod:`caramba.api.routes_manifests`);
* ``/api/runs`` … start, list, status, metrics, events (SSE), cancel, resume, results,
  artifacts, model tree, compare (:mod:`caramba.api.routes_runs`,
  :mod:`caramba.api.routes_results`);
* ``/api/codegraph/*``, ``/api/memory/*``, ``/api/rag/*`` mirroring the MCP tools
  (:mod:`caramba.api.routes_search`);
* ``/dashboard/`` the live web page (plain HTML + JS in ``api/static``), ``/`` redirects.

The API shares its machinery with the MCP server: the same ``ToolDeps`` (workspace,
sandbox, the one :class:`~caramba.tools.jobs.JobManager` — runs started here and there are
the same jobs), the same manifest intake and the same result readers.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

import caramba
from caramba.api.errors import install_handlers
from caramba.api.security import OriginAndSizeMiddleware, require_token
from caramba.tools.common import ToolDeps
from caramba.tools.jobs import DEFAULT_MAX_RUNNING, JobManager
from caramba.tools.sandbox import Limits, Sandbox
from caramba.workspace import Workspace

STATIC = Path(__file__).resolve().parent / "static"


class ApiOptions(BaseModel):
    """How the API is set up (the flags of ``caramba serve``)."""

    model_config = ConfigDict(extra="forbid")

    workspace: Path | None = Field(None, description="workspace root; default $CARAMBA_WORKSPACE or cwd")
    token: str | None = Field(None, description="bearer token every /api call must carry; None = no auth")
    allow_python_impl: bool = Field(False, description="let submitted manifests name python: impls")
    max_jobs: int = Field(DEFAULT_MAX_RUNNING, ge=1, le=256, description="runs active at once")
    allowed_origins: tuple[str, ...] = Field((), description="extra browser origins (CORS + Origin check)")
    max_body_bytes: int = Field(1024 * 1024, ge=1024, description="largest request body accepted (413 above)")
    limits: Limits = Field(default_factory=Limits)


def get_deps(request: Request) -> ToolDeps:
    """FastAPI dependency: the server-wide workspace, sandbox and job manager."""
    return request.app.state.deps


def create_app(options: ApiOptions | None = None) -> FastAPI:
    """The configured application (see the module docstring)."""
    from caramba.api import routes_manifests, routes_results, routes_runs, routes_search

    opts = options or ApiOptions()
    workspace = Workspace(opts.workspace)
    deps = ToolDeps(workspace=workspace, sandbox=Sandbox(workspace, opts.limits),
                    jobs=JobManager(workspace, max_running=opts.max_jobs),
                    allow_python_impl=opts.allow_python_impl)
    app = FastAPI(title="caramba", version=caramba.__version__,
                  description="REST API of caramba: manifests, runs (live events), results, code graph and "
                              "memory. Every /api route except /api/health needs the bearer token printed by "
                              "`caramba serve`.")
    app.state.deps = deps
    app.state.token = opts.token.encode() if opts.token else None
    install_handlers(app)

    @app.get("/api/health", tags=["server"])
    def health() -> dict[str, object]:
        """Liveness probe (no token needed): the version and the workspace name."""
        return {"ok": True, "version": caramba.__version__, "workspace": workspace.root.name}

    guarded = [Depends(require_token)]
    for module in (routes_manifests, routes_runs, routes_results, routes_search):
        app.include_router(module.router, prefix="/api", dependencies=guarded)

    app.mount("/dashboard", StaticFiles(directory=STATIC, html=True), name="dashboard")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    if opts.allowed_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(opts.allowed_origins),
                           allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(OriginAndSizeMiddleware, max_body_bytes=opts.max_body_bytes,
                       allowed_origins=opts.allowed_origins)
    return app
