"""Build caramba's MCP server: one ``MCPServer`` with every tool group, resources and prompts.

    server, deps = build_server(ServerOptions(workspace="/path/to/ws"))
    server.run("stdio")                     # or tools.transports.serve_http(...)

Tool groups (each a module with ``register(server, deps)``):

==============  ===============================================================
manifests       list_presets, get_preset, layer_catalog, validate_manifest,
                dry_run_manifest, write_manifest
runs            run_manifest, run_status, wait_run, cancel_run, resume_run, list_runs
results         get_results, get_artifact, compare_runs
codegraph       codegraph_sync (a background job), sync_status, wait_sync, cancel_sync,
                list_syncs, codegraph_query, find_symbol, callers, callees,
                subclasses, layer_usage
memory          memory_add, memory_search, rag_index, rag_search
files           read_file, list_files, search_files
==============  ===============================================================

Everything the tools touch is confined to one workspace (``caramba.workspace``).
"""

from __future__ import annotations

from pathlib import Path

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel, ConfigDict, Field

import caramba
from caramba.tools import (
    group_codegraph, group_files, group_manifests, group_memory, group_results, group_runs, prompts,
    resources,
)
from caramba.tools.common import ToolDeps
from caramba.tools.jobs import DEFAULT_MAX_RUNNING, JobManager
from caramba.tools.sandbox import Limits, Sandbox
from caramba.workspace import Workspace

GROUPS = (group_manifests, group_runs, group_results, group_codegraph, group_memory, group_files)

INSTRUCTIONS = """\
caramba: manifest-driven neural-architecture research. Typical loop:
1. list_presets / get_preset / layer_catalog to see what exists;
2. write or edit a manifest, check it with validate_manifest (every problem comes back with
   its YAML path and a fix) and dry_run_manifest (model tree + parameter counts);
3. run_manifest starts a background run and returns its job id; wait_run streams progress;
   cancel_run / resume_run stop and continue it (checkpoints are kept);
4. get_results, get_artifact (PNG plots as images) and compare_runs (mean ± 95% CI over seeds);
5. find_symbol / callers / layer_usage explore caramba's own code; memory_* and rag_* keep notes.
All paths are relative to the workspace."""


class ServerOptions(BaseModel):
    """How a server is set up (the CLI flags of ``caramba mcp serve``)."""

    model_config = ConfigDict(extra="forbid")

    workspace: Path | None = Field(None, description="workspace root; default $CARAMBA_WORKSPACE or cwd")
    allow_python_impl: bool = Field(False, description="let submitted manifests name python: impls")
    max_jobs: int = Field(DEFAULT_MAX_RUNNING, ge=1, le=256, description="runs active at once")
    limits: Limits = Field(default_factory=Limits)


def build_server(options: ServerOptions | None = None) -> tuple[MCPServer, ToolDeps]:
    """The configured server and the dependencies its tools share."""
    opts = options or ServerOptions()
    workspace = Workspace(opts.workspace)
    deps = ToolDeps(workspace=workspace, sandbox=Sandbox(workspace, opts.limits),
                    jobs=JobManager(workspace, max_running=opts.max_jobs),
                    allow_python_impl=opts.allow_python_impl)
    server: MCPServer = MCPServer(
        "caramba", title="caramba", version=caramba.__version__, instructions=INSTRUCTIONS,
        log_level="WARNING", middleware=[group_runs.cancel_middleware(deps)],
    )
    for group in GROUPS:
        group.register(server, deps)
    resources.register(server, deps)
    prompts.register(server, deps)
    server.middleware.append(prompts.arguments_middleware(server))  # needs the server's prompt list
    return server, deps
