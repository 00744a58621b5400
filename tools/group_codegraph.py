"""Code-graph tools: ``codegraph_sync`` (+ ``sync_status``, ``wait_sync``, ``cancel_sync``,
``list_syncs``), ``codegraph_query``, ``find_symbol``, ``callers``, ``callees``,
``subclasses``, ``layer_usage``.

The graph lives in FalkorDB (embedded by default) and is built by ``codegraph_sync`` from
a folder of the workspace (incremental: unchanged files are skipped; atomic: readers keep
the old graph until the new one is swapped in). A sync is a background job
(:mod:`caramba.tools.sync_jobs`, a ``caramba codegraph sync`` subprocess): the tool
returns its job id at once, or with ``wait: true`` follows it to the end sending progress
notifications (files parsed / total), as ``wait_sync`` does. Cancelling (``cancel_sync``,
or ``notifications/cancelled`` for a waiting request) stops it and leaves the previous
graph usable; jobs are listed across server restarts (``list_syncs``). Queries are read-only — the Cypher tool
refuses write clauses and FalkorDB's ``GRAPH.RO_QUERY`` enforces it again.

``graph`` may be omitted when the workspace has exactly one code graph.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from caramba.tools.codegraph_bridge import CodeGraphTools
from caramba.tools.common import ToolDeps, run_blocking, tool_errors
from caramba.tools.group_runs import cancels_job
from caramba.tools.job_store import JobState
from caramba.tools.sync_jobs import SyncJob, follow_sync
from caramba.tools.sync_jobs import sync_status as status_of

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
GraphArg = Annotated[str | None, Field(description="code graph name; default: the only one in the workspace")]
SymbolArg = Annotated[str, Field(min_length=1, description="qualified name (pkg.mod.func) or an unambiguous bare name")]


SyncIdArg = Annotated[str, Field(description="job id returned by codegraph_sync (sync-…)")]


class SyncWait(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: SyncJob
    timed_out: bool = Field(description="true when the sync was still active at the timeout")


class SyncList(BaseModel):
    model_config = ConfigDict(extra="forbid")
    jobs: list[SyncJob]


class Rows(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: list[dict[str, Any]]


class CypherResult(BaseModel):
    model_config = ConfigDict(extra="forbid")
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool


class Callees(BaseModel):
    model_config = ConfigDict(extra="forbid")
    qualname: str
    resolved: list[dict[str, Any]]
    unresolved: list[dict[str, Any]] = Field(description="calls the static resolver could not bind (line, text)")


def register(server: MCPServer, deps: ToolDeps) -> None:
    """Add the code-graph tools."""
    cg = CodeGraphTools(deps.workspace, deps.sandbox)

    jobs = deps.jobs

    async def follow(ctx: Context, job_id: str, timeout_s: float) -> SyncWait:
        async with cancels_job(deps, ctx, job_id):  # notifications/cancelled for this request cancels the sync
            status, timed_out = await follow_sync(jobs, job_id, timeout_s, ctx.report_progress)
        return SyncWait(status=status, timed_out=timed_out)

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False,
                                             idempotent_hint=True, open_world_hint=False))
    @tool_errors
    async def codegraph_sync(
        ctx: Context,
        path: Annotated[str, Field(description="folder of the workspace to index")] = ".",
        graph: Annotated[str | None, Field(description="graph name; default: the folder's name")] = None,
        wait: Annotated[bool, Field(description="follow the sync to its end with progress notifications")] = False,
        timeout_s: Annotated[float, Field(gt=0, le=86400, description="with wait: stop waiting after this long")] = 600.0,
    ) -> SyncJob:
        """Index Python and manifest files of a workspace folder into the code graph, as a
        background job (incremental, atomic swap). Returns the job id at once (follow it with
        wait_sync / sync_status), or with wait=true when it ends."""
        root = await run_blocking(deps.sandbox.resolve, path, must_exist=True)
        rec = await run_blocking(jobs.start_sync, root, graph=graph)
        if wait:
            return (await follow(ctx, rec.job_id, timeout_s)).status
        return await run_blocking(status_of, jobs, rec)

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def sync_status(job_id: SyncIdArg) -> SyncJob:
        """State, progress (files parsed / total) and, once completed, the report of a sync."""
        return await run_blocking(status_of, jobs, await run_blocking(jobs.get_sync, job_id))

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def wait_sync(
        job_id: SyncIdArg, ctx: Context,
        timeout_s: Annotated[float, Field(gt=0, le=86400, description="give up waiting after this long")] = 600.0,
    ) -> SyncWait:
        """Wait for a sync to end, streaming progress notifications (files parsed / total).
        Cancelling this request (notifications/cancelled) cancels the sync."""
        await run_blocking(jobs.get_sync, job_id)
        return await follow(ctx, job_id, timeout_s)

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False))
    @tool_errors
    async def cancel_sync(
        job_id: SyncIdArg,
        wait_s: Annotated[float, Field(ge=0, le=600, description="seconds to wait for the sync to stop")] = 30.0,
    ) -> SyncJob:
        """Stop a sync; the previous graph stays as it was (run codegraph_sync again later:
        it is incremental)."""
        await run_blocking(jobs.get_sync, job_id)
        return await run_blocking(status_of, jobs, await run_blocking(jobs.cancel, job_id, wait_s=wait_s))

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def list_syncs(
        state: Annotated[JobState | None, Field(description="only syncs in this state")] = None,
        limit: Annotated[int, Field(ge=1, le=1000, description="newest first, at most this many")] = 50,
    ) -> SyncList:
        """Code-graph sync jobs of this workspace, newest first (survives server restarts;
        'interrupted' ones can simply be synced again)."""
        recs = await run_blocking(jobs.list, "codegraph_sync")
        chosen = [r for r in recs if state is None or r.state == state][:limit]
        return SyncList(jobs=[await run_blocking(status_of, jobs, r) for r in chosen])

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def codegraph_query(
        cypher: Annotated[str, Field(min_length=1, max_length=20_000, description="read-only Cypher (MATCH … RETURN …)")],
        graph: GraphArg = None,
        limit: Annotated[int, Field(ge=1, le=10_000)] = 1000,
    ) -> CypherResult:
        """Run a read-only Cypher query on the code graph (nodes: Symbol with labels Module,
        Class, Function; File, Manifest, LayerType, Repository; edges: CONTAINS, DEFINES, CALLS,
        INHERITS, IMPORTS, DECORATED_BY, USES_LAYER)."""
        res = await run_blocking(cg.query, cypher, graph=graph, limit=limit)
        return CypherResult(columns=[str(c) for c in res["columns"]], rows=res["rows"], truncated=res["truncated"])

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def find_symbol(
        name: Annotated[str, Field(min_length=1, description="bare or qualified name of a function, class or module")],
        graph: GraphArg = None,
        limit: Annotated[int, Field(ge=1, le=500)] = 50,
    ) -> Rows:
        """Where a symbol is defined: kind, qualified name, file, line, signature, docstring."""
        return Rows(rows=await run_blocking(cg.find_symbol, name, graph=graph, limit=limit))

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def callers(symbol: SymbolArg, graph: GraphArg = None) -> Rows:
        """Functions that call ``symbol`` (with the file, line and text of each call)."""
        return Rows(rows=await run_blocking(cg.callers, symbol, graph=graph))

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def callees(symbol: SymbolArg, graph: GraphArg = None) -> Callees:
        """What ``symbol`` calls: resolved callees, plus calls the resolver could not bind."""
        return Callees(**await run_blocking(cg.callees, symbol, graph=graph))

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def subclasses(
        cls: Annotated[str, Field(min_length=1, description="class name (qualified or unambiguous bare)")],
        graph: GraphArg = None,
        transitive: Annotated[bool, Field(description="include subclasses of subclasses")] = False,
    ) -> Rows:
        """Classes inheriting from ``cls`` (depth 1, or all levels with transitive)."""
        return Rows(rows=await run_blocking(cg.subclasses, cls, graph=graph, transitive=transitive))

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def layer_usage(
        layer_type: Annotated[str, Field(min_length=1, description="layer/topology type as written in manifests, e.g. SSMLayer")],
        graph: GraphArg = None,
    ) -> Rows:
        """Manifests (and lines) that use a layer or topology type."""
        return Rows(rows=await run_blocking(cg.layer_usage, layer_type, graph=graph))
