"""Memory and retrieval tools: ``memory_add``, ``memory_search`` (Graphiti temporal
knowledge graph on FalkorDB) and ``rag_index``, ``rag_search`` (DeepLake vectors + BM25).

* ``memory_add`` needs a configured LLM (Graphiti extracts entities and facts with it);
  without one the tool fails with the memory package's message saying how to configure
  it. ``memory_search`` needs only the embedder.
* ``rag_index`` indexes workspace files/folders incrementally (unchanged sources are not
  re-embedded); ``rag_search`` is hybrid (vector + keyword, reciprocal-rank fused).

Graphiti and DeepLake calls run in a worker thread (the graph client gets its own event
loop there), so a slow extraction never blocks the other clients of the server.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from caramba.tools.common import ToolDeps, run_blocking, tool_errors

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
GroupArg = Annotated[str | None, Field(description="memory group (one per research project); default memory.group_id")]


class MemoryAdded(BaseModel):
    model_config = ConfigDict(extra="forbid")
    episode: dict[str, Any]
    entities: list[str]
    facts: list[str]


class MemoryFacts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    facts: list[dict[str, Any]]


class RagIndexed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sources_seen: int
    sources_indexed: int
    sources_unchanged: int
    sources_removed: int
    chunks_embedded: int
    chunks_reused: int
    total_chunks: int
    seconds: float
    warnings: list[str]


class RagHits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hits: list[dict[str, Any]] = Field(description="path, start/end line, kind, title, score, text")


def _memory_add(deps: ToolDeps, text: str, name: str | None, kind: str, group: str | None) -> MemoryAdded:
    from caramba.memory.graph_memory import GraphMemory

    async def go() -> MemoryAdded:
        async with GraphMemory(deps.workspace, group=group) as mem:
            res = await mem.add_episode(text, name=name or f"{kind} from MCP", kind=kind)
        return MemoryAdded(episode=res.episode.to_dict(), entities=res.entities, facts=res.facts)

    return asyncio.run(go())


def _memory_search(deps: ToolDeps, query: str, when: str | None, limit: int, group: str | None) -> MemoryFacts:
    from caramba.memory.graph_memory import GraphMemory
    from caramba.memory.timefilter import parse_when

    since, until = parse_when(when) if when else (None, None)

    async def go() -> MemoryFacts:
        async with GraphMemory(deps.workspace, group=group) as mem:
            facts = await mem.search(query, since=since, until=until, limit=limit)
        return MemoryFacts(facts=[f.to_dict() for f in facts])

    return asyncio.run(go())


def _rag_index(deps: ToolDeps, paths: list[str], kind: str | None, rebuild: bool) -> RagIndexed:
    from caramba.memory.rag_index import RagIndex

    resolved = [deps.sandbox.resolve(p, must_exist=True) for p in paths]
    rep = RagIndex(deps.workspace).index(resolved, kind=kind, rebuild=rebuild)
    return RagIndexed(sources_seen=rep.sources_seen, sources_indexed=rep.sources_indexed,
                      sources_unchanged=rep.sources_unchanged, sources_removed=rep.sources_removed,
                      chunks_embedded=rep.chunks_embedded, chunks_reused=rep.chunks_reused,
                      total_chunks=rep.total_chunks, seconds=rep.seconds, warnings=rep.warnings)


def _rag_search(deps: ToolDeps, query: str, k: int, kind: str | None, path_prefix: str | None,
                mode: str) -> RagHits:
    from caramba.memory.rag_index import RagIndex
    from caramba.memory.rag_search import search

    hits = search(RagIndex(deps.workspace), query, k=k, kind=kind, path_prefix=path_prefix, mode=mode)  # type: ignore[arg-type]
    return RagHits(hits=[h.to_dict() for h in hits])


def register(server: MCPServer, deps: ToolDeps) -> None:
    """Add the memory and retrieval tools."""

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True))
    @tool_errors
    async def memory_add(
        text: Annotated[str, Field(min_length=1, max_length=100_000, description="what to remember")],
        name: Annotated[str | None, Field(description="short title of the episode")] = None,
        kind: Annotated[Literal["note", "transcript", "run"], Field(description="episode kind")] = "note",
        group: GroupArg = None,
    ) -> MemoryAdded:
        """Remember something in the long-term research memory (Graphiti extracts entities and
        facts with the configured LLM)."""
        return await run_blocking(_memory_add, deps, text, name, kind, group)

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def memory_search(
        query: Annotated[str, Field(min_length=1, description="what to look for")],
        when: Annotated[str | None, Field(description="time window: 'today', 'last week', 'last 3 days', an ISO date")] = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 10,
        group: GroupArg = None,
    ) -> MemoryFacts:
        """Search the research memory's facts (hybrid BM25 + vector), optionally in a time window."""
        return await run_blocking(_memory_search, deps, query, when, limit, group)

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False))
    @tool_errors
    async def rag_index(
        paths: Annotated[list[str], Field(min_length=1, description="workspace files or folders (code, papers, notes, runs)")],
        kind: Annotated[Literal["code", "paper", "run", "note"] | None,
                        Field(description="force the kind of text sources")] = None,
        rebuild: Annotated[bool, Field(description="drop the index and rebuild it")] = False,
    ) -> RagIndexed:
        """Index workspace files into the retrieval store (incremental: unchanged files are skipped)."""
        return await run_blocking(_rag_index, deps, paths, kind, rebuild)

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    async def rag_search(
        query: Annotated[str, Field(min_length=1, description="what to look for")],
        k: Annotated[int, Field(ge=1, le=100, description="number of chunks")] = 10,
        kind: Annotated[Literal["code", "paper", "run", "note"] | None, Field(description="only this kind")] = None,
        path_prefix: Annotated[str | None, Field(description="only sources under this workspace path")] = None,
        mode: Annotated[Literal["hybrid", "vector", "keyword"], Field(description="retrieval mode")] = "hybrid",
    ) -> RagHits:
        """Retrieve the most relevant chunks of indexed code, papers, notes and runs."""
        return await run_blocking(_rag_search, deps, query, k, kind, path_prefix, mode)
