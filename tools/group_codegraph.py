"""Code-graph tools: ``codegraph_sync``, ``codegraph_query``, ``find_symbol``, ``callers``,
``callees``, ``subclasses``, ``layer_usage``.

The graph lives in FalkorDB (embedded by default) and is built by ``codegraph_sync`` from
a folder of the workspace (incremental: unchanged files are skipped; atomic: readers keep
the old graph until the new one is swapped in). Queries are read-only — the Cypher tool
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

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
GraphArg = Annotated[str | None, Field(description="code graph name; default: the only one in the workspace")]
SymbolArg = Annotated[str, Field(min_length=1, description="qualified name (pkg.mod.func) or an unambiguous bare name")]


class SyncResult(BaseModel):
    model_config = ConfigDict(extra="forbid")
    report: dict[str, Any] = Field(description="graph, root, files, parsed, skipped, removed, errors, seconds")


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

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False,
                                             idempotent_hint=True, open_world_hint=False))
    @tool_errors
    async def codegraph_sync(
        ctx: Context,
        path: Annotated[str, Field(description="folder of the workspace to index")] = ".",
        graph: Annotated[str | None, Field(description="graph name; default: the folder's name")] = None,
    ) -> SyncResult:
        """Index Python and manifest files into the code graph (incremental, atomic swap)."""
        await ctx.report_progress(0, 1, f"syncing {path}")
        report = await run_blocking(cg.sync, path, graph=graph)
        await ctx.report_progress(1, 1, f"{report.get('files', 0)} files")
        return SyncResult(report=report)

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
