"""Code-graph, memory and retrieval routes, mirroring the MCP tools of the same names.

Code graph (FalkorDB: the workspace's embedded server, or ``falkordb.url``), through the
MCP server's :class:`~caramba.tools.codegraph_bridge.CodeGraphTools`:

* ``POST /api/codegraph/sync`` ``{path, graph, wait, timeout_s}`` starts a sync job (the
  MCP server's job manager, :mod:`caramba.tools.sync_jobs`) and returns it at once, or
  when it ends with ``wait: true``; ``GET /api/codegraph/syncs`` lists them (newest
  first, across restarts), ``GET /api/codegraph/syncs/{job_id}`` is one,
  ``POST /api/codegraph/syncs/{job_id}/cancel`` stops one (the previous graph stays);
  ``POST /api/codegraph/query``
  ``{cypher, graph, limit}`` (read-only Cypher);
* ``GET /api/codegraph/find?name=``, ``/callers?symbol=``, ``/callees?symbol=``,
  ``/subclasses?cls=&transitive=``, ``/layer-usage?layer_type=`` (``graph`` optional when
  the workspace has one code graph).

Memory (Graphiti on FalkorDB) and retrieval (DeepLake), through the MCP memory tools' code:

* ``POST /api/memory/add`` ``{text, name, kind, group}`` (needs a configured LLM);
* ``GET /api/memory/search?query=&when=last+week&limit=&group=``;
* ``POST /api/rag/index`` ``{paths, kind, rebuild}``; ``GET /api/rag/search?query=&k=&kind=&path_prefix=&mode=``.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from caramba.api.app import get_deps
from caramba.tools.codegraph_bridge import CodeGraphTools
from caramba.tools.common import ToolDeps, run_blocking
from caramba.tools.group_codegraph import Callees, CypherResult, Rows
from caramba.tools.sync_jobs import SyncJob, follow_sync, sync_status
from caramba.tools.group_memory import (
    MemoryAdded, MemoryFacts, RagHits, RagIndexed, _memory_add, _memory_search, _rag_index, _rag_search,
)

router = APIRouter()
Kind = Literal["code", "paper", "run", "note"]


def code_graph(request: Request) -> CodeGraphTools:
    """One shared (lazily connected) code-graph client per app."""
    state = request.app.state
    if getattr(state, "codegraph", None) is None:
        deps: ToolDeps = state.deps
        state.codegraph = CodeGraphTools(deps.workspace, deps.sandbox)
    return state.codegraph


class SyncRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(".", description="folder of the workspace to index")
    graph: str | None = Field(None, description="graph name; default: the folder's name")
    wait: bool = Field(False, description="answer when the sync ends (else at once, with the job id)")
    timeout_s: float = Field(600.0, gt=0, le=3600, description="with wait: stop waiting after this long")


class QueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cypher: str = Field(min_length=1, max_length=20_000, description="read-only Cypher (MATCH … RETURN …)")
    graph: str | None = None
    limit: int = Field(1000, ge=1, le=10_000)


class MemoryAddRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=100_000)
    name: str | None = None
    kind: Literal["note", "transcript", "run"] = "note"
    group: str | None = None


class RagIndexRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    paths: list[str] = Field(min_length=1, description="workspace files or folders")
    kind: Kind | None = None
    rebuild: bool = False


@router.post("/codegraph/sync", response_model=SyncJob, tags=["codegraph"])
async def codegraph_sync(body: SyncRequest, deps: ToolDeps = Depends(get_deps)) -> SyncJob:
    """Index Python and manifest files of a workspace folder (incremental, atomic swap) as a
    background job; returns it at once (or when it ends, with ``wait``)."""
    root = await run_blocking(deps.sandbox.resolve, body.path, must_exist=True)
    rec = await run_blocking(deps.jobs.start_sync, root, graph=body.graph)
    if body.wait:
        return (await follow_sync(deps.jobs, rec.job_id, body.timeout_s))[0]
    return await run_blocking(sync_status, deps.jobs, rec)


@router.get("/codegraph/syncs", response_model=list[SyncJob], tags=["codegraph"])
async def list_syncs(deps: ToolDeps = Depends(get_deps)) -> list[SyncJob]:
    """Code-graph sync jobs, newest first (interrupted ones can simply be synced again)."""
    recs = await run_blocking(deps.jobs.list, "codegraph_sync")
    return [await run_blocking(sync_status, deps.jobs, r) for r in recs]


@router.get("/codegraph/syncs/{job_id}", response_model=SyncJob, tags=["codegraph"])
async def get_sync(job_id: str, deps: ToolDeps = Depends(get_deps)) -> SyncJob:
    """State, progress (files parsed / total) and, once completed, the report of a sync."""
    return await run_blocking(sync_status, deps.jobs, await run_blocking(deps.jobs.get_sync, job_id))


@router.post("/codegraph/syncs/{job_id}/cancel", response_model=SyncJob, tags=["codegraph"])
async def cancel_sync(job_id: str, wait_s: float = Query(30.0, ge=0, le=600),
                      deps: ToolDeps = Depends(get_deps)) -> SyncJob:
    """Stop a sync; the previous graph stays as it was."""
    await run_blocking(deps.jobs.get_sync, job_id)
    return await run_blocking(sync_status, deps.jobs, await run_blocking(deps.jobs.cancel, job_id, wait_s=wait_s))


@router.post("/codegraph/query", response_model=CypherResult, tags=["codegraph"])
async def codegraph_query(body: QueryRequest, cg: CodeGraphTools = Depends(code_graph)) -> CypherResult:
    """Read-only Cypher on the code graph (write clauses are refused)."""
    res = await run_blocking(cg.query, body.cypher, graph=body.graph, limit=body.limit)
    return CypherResult(columns=[str(c) for c in res["columns"]], rows=res["rows"], truncated=res["truncated"])


@router.get("/codegraph/find", response_model=Rows, tags=["codegraph"])
async def find_symbol(name: str = Query(min_length=1), graph: str | None = None,
                      limit: int = Query(50, ge=1, le=500), cg: CodeGraphTools = Depends(code_graph)) -> Rows:
    """Where a symbol is defined: kind, qualified name, file, line, signature, docstring."""
    return Rows(rows=await run_blocking(cg.find_symbol, name, graph=graph, limit=limit))


@router.get("/codegraph/callers", response_model=Rows, tags=["codegraph"])
async def callers(symbol: str = Query(min_length=1), graph: str | None = None,
                  cg: CodeGraphTools = Depends(code_graph)) -> Rows:
    """Functions that call ``symbol`` (file, line, text of each call)."""
    return Rows(rows=await run_blocking(cg.callers, symbol, graph=graph))


@router.get("/codegraph/callees", response_model=Callees, tags=["codegraph"])
async def callees(symbol: str = Query(min_length=1), graph: str | None = None,
                  cg: CodeGraphTools = Depends(code_graph)) -> Callees:
    """What ``symbol`` calls: resolved callees plus unresolved calls."""
    return Callees(**await run_blocking(cg.callees, symbol, graph=graph))


@router.get("/codegraph/subclasses", response_model=Rows, tags=["codegraph"])
async def subclasses(cls: str = Query(min_length=1), graph: str | None = None, transitive: bool = False,
                     cg: CodeGraphTools = Depends(code_graph)) -> Rows:
    """Classes inheriting from ``cls``."""
    return Rows(rows=await run_blocking(cg.subclasses, cls, graph=graph, transitive=transitive))


@router.get("/codegraph/layer-usage", response_model=Rows, tags=["codegraph"])
async def layer_usage(layer_type: str = Query(min_length=1), graph: str | None = None,
                      cg: CodeGraphTools = Depends(code_graph)) -> Rows:
    """Manifests (and lines) that use a layer or topology type."""
    return Rows(rows=await run_blocking(cg.layer_usage, layer_type, graph=graph))


@router.post("/memory/add", response_model=MemoryAdded, tags=["memory"])
async def memory_add(body: MemoryAddRequest, deps: ToolDeps = Depends(get_deps)) -> MemoryAdded:
    """Remember a note (Graphiti extracts entities and facts with the configured LLM)."""
    return await run_blocking(_memory_add, deps, body.text, body.name, body.kind, body.group)


@router.get("/memory/search", response_model=MemoryFacts, tags=["memory"])
async def memory_search(query: str = Query(min_length=1),
                        when: str | None = Query(None, description="'today', 'last week', an ISO date …"),
                        limit: int = Query(10, ge=1, le=100), group: str | None = None,
                        deps: ToolDeps = Depends(get_deps)) -> MemoryFacts:
    """Search the research memory's facts (hybrid BM25 + vector), optionally in a time window."""
    return await run_blocking(_memory_search, deps, query, when, limit, group)


@router.post("/rag/index", response_model=RagIndexed, tags=["memory"])
async def rag_index(body: RagIndexRequest, deps: ToolDeps = Depends(get_deps)) -> RagIndexed:
    """Index workspace files into the retrieval store (unchanged files are skipped)."""
    return await run_blocking(_rag_index, deps, body.paths, body.kind, body.rebuild)


@router.get("/rag/search", response_model=RagHits, tags=["memory"])
async def rag_search(query: str = Query(min_length=1), k: int = Query(10, ge=1, le=100), kind: Kind | None = None,
                     path_prefix: str | None = None, mode: Literal["hybrid", "vector", "keyword"] = "hybrid",
                     deps: ToolDeps = Depends(get_deps)) -> dict[str, Any]:
    """The most relevant chunks of indexed code, papers, notes and runs."""
    hits = await run_blocking(_rag_search, deps, query, k, kind, path_prefix, mode)
    return hits.model_dump(mode="json")
