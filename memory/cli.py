"""Commands of `caramba.memory`: ``caramba memory …`` (Graphiti) and ``caramba rag …`` (DeepLake).

    caramba memory add "RoPE theta 500k helped at 8k" [--group G]
    caramba memory add --file notes.md [--kind transcript] [--group G]
    caramba memory add --run runs/<manifest>/<target>/<run id>
    caramba memory search "what helped long context?" [--since "last week"] [--group G]
    caramba memory episodes [--group G] [-n 20]
    caramba rag index src/ papers/ runs/ [--kind note] [--rebuild]
    caramba rag search "fused rms norm backward" [--kind code] [--path engine/] [-k 10]

The workspace is ``$CARAMBA_WORKSPACE`` or the current directory. Module-level imports
stay light (typer, rich); heavy libraries load inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from caramba.engine.errors import CarambaError

memory_app = typer.Typer(help="Long-term research memory (Graphiti temporal knowledge graph on FalkorDB).",
                         no_args_is_help=True)
rag_app = typer.Typer(help="Retrieval over code, papers, notes and runs (DeepLake).", no_args_is_help=True)
out = Console(soft_wrap=True)

Group = Annotated[Optional[str], typer.Option("--group", "-g", help="memory group (one per research project); default memory.group_id")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


def _ws():  # -> Workspace
    from caramba.workspace import Workspace

    return Workspace()


@memory_app.command("add")
def memory_add(
    text: Annotated[Optional[str], typer.Argument(help="the text to remember")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="read the text from this file")] = None,
    run: Annotated[Optional[Path], typer.Option("--run", help="a run directory to record")] = None,
    kind: Annotated[str, typer.Option(help="note | transcript")] = "note",
    name: Annotated[Optional[str], typer.Option(help="episode name")] = None,
    group: Group = None,
) -> None:
    """Add an episode; Graphiti extracts entities and facts from it with the configured LLM."""
    from caramba.memory.graph_memory import GraphMemory
    from caramba.memory.record import record_run_result, run_sync

    given = [x for x in (text, file, run) if x is not None]
    if len(given) != 1:
        raise CarambaError("give exactly one of TEXT, --file F or --run DIR",
                           fix='e.g. caramba memory add "RoPE theta 500k helped" or --file notes.md')
    ws = _ws()
    if run is not None:
        res = run_sync(record_run_result(ws, run, group=group, force=True))
    else:
        if file is not None:
            if not file.is_file():
                raise CarambaError(f"--file {file}: no such file")
            body, ep_name = file.read_text(encoding="utf-8", errors="replace"), name or file.name
        else:
            body, ep_name = str(text), name
        if kind not in ("note", "transcript"):
            raise CarambaError(f"--kind {kind}: unknown", fix="use note or transcript (runs: --run DIR)")

        async def add():  # noqa: ANN202
            async with GraphMemory(ws, group=group) as mem:
                if kind == "transcript":
                    return await mem.add_transcript(body, name=ep_name or "transcript")
                return await mem.add_note(body, name=ep_name)

        res = run_sync(add())
    if res is None:  # record_run_result(force=True) always writes; keep the type checker honest
        raise CarambaError("internal: the run was not recorded")
    out.print(f"added {res.episode.kind} episode [bold]{res.episode.name}[/] to group "
              f"{res.episode.group}: {len(res.entities)} entities, {len(res.facts)} facts")
    for f in res.facts:
        out.print(f"  • {f}")


@memory_app.command("search")
def memory_search(
    query: Annotated[str, typer.Argument(help="what to look for")],
    group: Group = None,
    since: Annotated[Optional[str], typer.Option(help='ISO date or phrase: "last week", "yesterday", "last 3 days"')] = None,
    until: Annotated[Optional[str], typer.Option(help="ISO date/time")] = None,
    k: Annotated[int, typer.Option("-k", help="number of facts")] = 10,
    as_json: AsJson = False,
) -> None:
    """Hybrid (keyword + vector) search over remembered facts; works without an LLM."""
    from caramba.memory.graph_memory import GraphMemory
    from caramba.memory.record import run_sync
    from caramba.memory.timefilter import parse_window

    lo, hi = parse_window(since, until)

    async def go():  # noqa: ANN202
        async with GraphMemory(_ws(), group=group) as mem:
            return await mem.search(query, since=lo, until=hi, limit=k)

    facts = run_sync(go())
    if as_json:
        typer.echo(json.dumps([f.to_dict() for f in facts], indent=2))
        return
    if not facts:
        out.print("no facts found")
        return
    t = Table("fact", "relation", "written")
    for f in facts:
        t.add_row(f.fact, f.relation, f"{f.created_at:%Y-%m-%d %H:%M}" if f.created_at else "")
    out.print(t)


@memory_app.command("episodes")
def memory_episodes(group: Group = None,
                    n: Annotated[int, typer.Option("-n", help="how many, newest first")] = 20,
                    as_json: AsJson = False) -> None:
    """List the most recent episodes of a group."""
    from caramba.memory.graph_memory import GraphMemory
    from caramba.memory.record import run_sync

    async def go():  # noqa: ANN202
        async with GraphMemory(_ws(), group=group) as mem:
            return await mem.episodes(n)

    eps = run_sync(go())
    if as_json:
        typer.echo(json.dumps([e.to_dict() for e in eps], indent=2))
        return
    t = Table("when", "kind", "name", "content")
    for e in eps:
        t.add_row(f"{e.valid_at:%Y-%m-%d %H:%M}", e.kind, e.name, e.content[:100].replace("\n", " "))
    out.print(t if eps else "no episodes")


@rag_app.command("index")
def rag_index(
    paths: Annotated[list[Path], typer.Argument(help="files or folders: code, papers (md/tex/txt/pdf), runs")],
    kind: Annotated[Optional[str], typer.Option(help="force the kind of text sources: paper | note")] = None,
    rebuild: Annotated[bool, typer.Option(help="delete the index first (after changing memory.embedder)")] = False,
) -> None:
    """Index sources incrementally: unchanged sources are skipped, deleted ones removed."""
    from caramba.memory.rag_index import RagIndex

    rep = RagIndex(_ws()).index([p.resolve() for p in paths], kind=kind, rebuild=rebuild)
    out.print(f"indexed {rep.sources_indexed} sources ({rep.sources_unchanged} unchanged, "
              f"{rep.sources_removed} removed): {rep.chunks_added} chunks written, "
              f"{rep.chunks_embedded} embedded, {rep.chunks_reused} reused; "
              f"{rep.total_chunks} chunks in the index ({rep.seconds:.1f}s)", soft_wrap=True)
    for w in rep.warnings:
        out.print(f"[yellow]warning:[/] {w}")


@rag_app.command("search")
def rag_search(
    query: Annotated[str, typer.Argument(help="what to look for")],
    kind: Annotated[Optional[str], typer.Option(help="code | paper | run | note")] = None,
    k: Annotated[int, typer.Option("-k", help="number of hits")] = 10,
    path: Annotated[Optional[str], typer.Option("--path", help="only sources under this workspace-relative prefix")] = None,
    mode: Annotated[str, typer.Option(help="hybrid | vector | keyword")] = "hybrid",
    as_json: AsJson = False,
) -> None:
    """Search the index (hybrid = vector + BM25 keyword, fused by reciprocal rank)."""
    from caramba.memory.rag_index import RagIndex
    from caramba.memory.rag_search import search

    hits = search(RagIndex(_ws()), query, k=k, kind=kind, path_prefix=path, mode=mode)  # type: ignore[arg-type]
    if as_json:
        typer.echo(json.dumps([h.to_dict() for h in hits], indent=2))
        return
    t = Table("score", "kind")
    t.add_column("where", overflow="fold")  # folded, never elided: the path is what you open next
    t.add_column("title", overflow="fold")
    t.add_column("text")
    for h in hits:
        t.add_row(f"{h.score:.4f}", h.kind, f"{h.path}:{h.start}-{h.end}", h.title,
                  h.text[:120].replace("\n", " "))
    out.print(t if hits else "no hits")


def register(app: typer.Typer) -> None:
    """Add ``memory`` and ``rag`` to the root app."""
    app.add_typer(memory_app, name="memory")
    app.add_typer(rag_app, name="rag")
