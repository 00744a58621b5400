"""Long-term research memory: Graphiti's temporal knowledge graph on FalkorDB.

What was tried, what it gave and why — as *episodes* (run results, brainstorm/review
transcripts, free-form notes) from which Graphiti's real pipeline extracts entities and
facts (with an LLM), embeds them and writes them to FalkorDB; later, hybrid search
(BM25 + vector, fused by reciprocal rank) returns the facts, optionally in a time window::

    async with GraphMemory(ws) as mem:                      # group = memory.group_id
        await mem.add_note("RoPE theta 500k cut val loss by 3% at 8k context")
        facts = await mem.search("rope theta", since=parse_when("last week")[0])

Wiring (all from :mod:`caramba.llm`, so any LiteLLM provider works): the LLM client is
``LiteLLMGraphitiClient`` on ``llm.*``; the embedder is ``memory.embedder`` (offline
hashing by default) and the reranker is cosine similarity over that embedder. With no
LLM configured, writing an episode raises :class:`~caramba.llm.LLMNotConfigured` (saying
how to configure one) and searching what is stored still works — search needs only the
embedder. Keep ``memory.embedder`` fixed for a graph: vectors of two models don't mix.

Groups and FalkorDB routing: one research project = one ``group``, stored as Graphiti
``group_id = "memory_<group>"``. Graphiti on FalkorDB keeps each group_id in its own
graph (database) of that name, and several of its entry points route by group_id
inconsistently (``add_episode`` clones the driver to the group's graph while
``Graphiti.search`` and episode reads may query the driver's default graph — upstream
getzep/graphiti issues #1161, #1325, #1659, #1676, #1842).
The guard: each :class:`GraphMemory` builds its ``FalkorDriver`` *on the group's graph*
and passes that driver explicitly to every call, so writes, episode lookups and searches
all hit the same graph; results are also checked to carry the group's id. Indices and
constraints are built the first time a group's graph is opened.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from caramba.engine.errors import CarambaError
from caramba.llm.embedders import Embedder, embedder_from_config
from caramba.llm.settings import LLMError, LLMNotConfigured, LLMSettings, llm_configured, resolve_llm
from caramba.workspace import CarambaConfig, Workspace

log = logging.getLogger(__name__)
GROUP_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
GRAPH_PREFIX = "memory_"
EPISODE_KINDS = ("note", "transcript", "run")


class GraphMemoryError(CarambaError):
    """A problem with the Graphiti memory (bad group, unreachable database…)."""


@dataclass(frozen=True)
class Fact:
    fact: str
    relation: str
    uuid: str
    group: str
    created_at: datetime | None
    valid_at: datetime | None
    invalid_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        iso = lambda d: d.isoformat() if d else None  # noqa: E731
        return {"fact": self.fact, "relation": self.relation, "uuid": self.uuid, "group": self.group,
                "created_at": iso(self.created_at), "valid_at": iso(self.valid_at),
                "invalid_at": iso(self.invalid_at)}


@dataclass(frozen=True)
class Episode:
    uuid: str
    name: str
    kind: str
    group: str
    created_at: datetime
    valid_at: datetime
    content: str

    def to_dict(self) -> dict[str, Any]:
        return {"uuid": self.uuid, "name": self.name, "kind": self.kind, "group": self.group,
                "created_at": self.created_at.isoformat(), "valid_at": self.valid_at.isoformat(),
                "content": self.content}


@dataclass(frozen=True)
class EpisodeResult:
    episode: Episode
    entities: list[str]
    facts: list[str]


def check_group(group: str) -> str:
    if not GROUP_PATTERN.match(group):
        raise GraphMemoryError(f"memory group '{group}' is not valid",
                           fix="use 1-64 letters, digits, '-' or '_' (one group per research project)")
    return group


class GraphMemory:
    """Graphiti memory of one group in a workspace. Use as ``async with``."""

    def __init__(self, ws: Workspace, *, group: str | None = None, url: str | None = None,
                 embedder: Embedder | None = None, config: CarambaConfig | None = None) -> None:
        """``config`` is the effective configuration (default: ``caramba.yml``; callers
        working for a manifest pass :func:`caramba.memory.settings.memory_config`'s)."""
        cfg = config or ws.config()
        self.ws = ws
        self.group = check_group(group or cfg.memory.group_id)
        self.group_id = GRAPH_PREFIX + self.group
        self.url = url or cfg.falkordb.url
        self.embedder = embedder or embedder_from_config(cfg.memory.embedder, cfg.llm.model,
                                                         cfg.llm.api_base, cfg.llm.api_key_env)
        self.llm: LLMSettings | None = None
        self._llm_problem: CarambaError | None = None
        if llm_configured(cfg.llm):
            try:
                self.llm = resolve_llm(cfg.llm)
            except LLMError as e:  # reported when an operation needs the LLM; search still works
                self._llm_problem = e
        self._graphiti: Any = None

    # -- lifecycle ----------------------------------------------------------------------
    async def __aenter__(self) -> "GraphMemory":
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> Any:
        if self._graphiti is not None:
            return self._graphiti
        from falkordb.asyncio import FalkorDB
        from graphiti_core import Graphiti
        from graphiti_core.driver.falkordb_driver import FalkorDriver

        from caramba.codegraph.server import ensure_falkordb
        from caramba.llm.graphiti_clients import EmbeddingReranker, GraphitiEmbedder, LiteLLMGraphitiClient

        ep = ensure_falkordb(self.ws, url=self.url)
        client = FalkorDB(host=ep.host, port=ep.port, username=ep.username, password=ep.password)
        driver = FalkorDriver(falkor_db=client, database=self.group_id)
        init = getattr(driver, "_init_task", None)  # FalkorDriver schedules it inside a loop
        if init is not None:
            await init
        else:
            await driver.build_indices_and_constraints()
        llm_client = LiteLLMGraphitiClient(self.llm) if self.llm else _NoLLMClient(self._llm_problem)
        self._graphiti = Graphiti(graph_driver=driver, llm_client=llm_client,
                                  embedder=GraphitiEmbedder(self.embedder),
                                  cross_encoder=EmbeddingReranker(self.embedder), max_coroutines=4)
        return self._graphiti

    async def close(self) -> None:
        if self._graphiti is not None:
            await self._graphiti.close()
            self._graphiti = None

    def _require_llm(self) -> None:
        if self._llm_problem is not None:
            raise self._llm_problem
        if self.llm is None:
            from caramba.llm.settings import HOW_TO_CONFIGURE
            raise LLMNotConfigured("writing to memory needs a language model (Graphiti extracts "
                                   "entities and facts with it) and none is configured; "
                                   "searching what is stored works without one",
                                   fix=HOW_TO_CONFIGURE)

    # -- writing ------------------------------------------------------------------------
    async def add_episode(self, text: str, *, name: str, kind: str = "note",
                          source_description: str | None = None,
                          reference_time: datetime | None = None) -> EpisodeResult:
        """Add one episode (Graphiti extracts entities/facts from it with the LLM)."""
        from graphiti_core.nodes import EpisodeType

        if kind not in EPISODE_KINDS:
            raise GraphMemoryError(f"unknown episode kind '{kind}'", fix=f"use one of {', '.join(EPISODE_KINDS)}")
        if not text.strip():
            raise GraphMemoryError("the episode text is empty", fix="pass the text to remember")
        self._require_llm()
        g = await self.open()
        try:
            res = await g.add_episode(
                name=name, episode_body=text, source=EpisodeType.text,
                source_description=f"caramba {kind}: {source_description or kind}",
                reference_time=reference_time or datetime.now(UTC), group_id=self.group_id)
        except ValidationError as e:  # Graphiti builds its schema models from the LLM's JSON
            first = e.errors()[0] if e.errors() else {}
            where = ".".join(str(x) for x in first.get("loc", ())) or "(top level)"
            raise LLMError(f"{self.llm.describe() if self.llm else 'the LLM'} answered Graphiti's "
                           f"{e.title} request with JSON that does not follow its schema "
                           f"({where}: {first.get('msg', e)}); nothing was written to memory",
                           fix="use a model that supports structured output (JSON schema), e.g. "
                               "openai/gpt-4o-mini; small local models often ignore the schema") from e
        return EpisodeResult(self._episode(res.episode), [n.name for n in res.nodes],
                             [e.fact for e in res.edges])

    async def add_note(self, text: str, *, name: str | None = None) -> EpisodeResult:
        return await self.add_episode(text, name=name or f"note {datetime.now(UTC):%Y-%m-%d %H:%M:%S}", kind="note")

    async def add_transcript(self, text: str, *, name: str, process: str = "brainstorm") -> EpisodeResult:
        return await self.add_episode(text, name=name, kind="transcript",
                                      source_description=f"{process} transcript")

    # -- reading ------------------------------------------------------------------------
    async def search(self, query: str, *, since: datetime | None = None, until: datetime | None = None,
                     limit: int = 10) -> list[Fact]:
        """Hybrid (BM25 + cosine, RRF) search over facts of this group; ``since``/``until``
        bound when the fact was written to memory (its ``created_at``)."""
        from graphiti_core.search.search_filters import ComparisonOperator, DateFilter, SearchFilters

        if not query.strip():
            raise GraphMemoryError("empty memory search query", fix="pass the words to search for")
        if limit < 1:
            raise GraphMemoryError(f"limit must be >= 1, got {limit}", fix="pass -k 10 (or any positive number)")
        window = []
        if since is not None:
            window.append(DateFilter(date=since, comparison_operator=ComparisonOperator.greater_than_equal))
        if until is not None:
            window.append(DateFilter(date=until, comparison_operator=ComparisonOperator.less_than_equal))
        filters = SearchFilters(created_at=[window] if window else None)
        g = await self.open()
        edges = await g.search(query, group_ids=[self.group_id], num_results=limit,
                               search_filter=filters, driver=g.driver)
        foreign = [e for e in edges if e.group_id != self.group_id]
        if foreign:  # routing guard: never hand another project's facts back
            log.warning("memory search in %s returned %d facts of other groups; dropped",
                        self.group_id, len(foreign))
        return [Fact(e.fact, e.name, e.uuid, e.group_id.removeprefix(GRAPH_PREFIX), e.created_at,
                     e.valid_at, e.invalid_at) for e in edges if e.group_id == self.group_id]

    async def episodes(self, last_n: int = 20) -> list[Episode]:
        """The most recent episodes of this group, newest first."""
        if last_n < 1:
            raise GraphMemoryError(f"the number of episodes must be >= 1, got {last_n}",
                                   fix="pass -n 20 (or any positive number)")
        g = await self.open()
        eps = await g.retrieve_episodes(datetime.now(UTC), last_n=last_n, group_ids=[self.group_id],
                                        driver=g.driver)
        return sorted((self._episode(e) for e in eps if e.group_id == self.group_id),
                      key=lambda e: e.valid_at, reverse=True)

    def _episode(self, e: Any) -> Episode:
        kind = (e.source_description or "").removeprefix("caramba ").split(":")[0]
        return Episode(e.uuid, e.name, kind if kind in EPISODE_KINDS else "note",
                       e.group_id.removeprefix(GRAPH_PREFIX), e.created_at, e.valid_at, e.content)


def _no_llm_client_class() -> type:
    from graphiti_core.llm_client.client import LLMClient

    class NoLLMClient(LLMClient):
        """Stands in for the LLM when none is configured: search never calls it; anything
        that does gets the configuration error."""

        def __init__(self, problem: CarambaError | None) -> None:
            super().__init__(None, cache=False)
            self.problem = problem

        async def _generate_response(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            from caramba.llm.settings import HOW_TO_CONFIGURE
            raise self.problem or LLMNotConfigured("this memory operation needs a language model",
                                                   fix=HOW_TO_CONFIGURE)

    return NoLLMClient


def _NoLLMClient(problem: CarambaError | None) -> Any:  # noqa: N802 — built lazily (graphiti import)
    return _no_llm_client_class()(problem)
