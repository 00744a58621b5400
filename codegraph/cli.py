"""``caramba db …`` (the FalkorDB server) and ``caramba codegraph …`` (the code graph).

    caramba db start | status | stop            # the workspace's embedded server
    caramba codegraph sync PATH [--graph NAME]  # index (incrementally) a source tree
    caramba codegraph callers pkg.mod.func      # canned questions; --json for tools
    caramba codegraph query "MATCH (c:Class) RETURN c.qualname LIMIT 5"

``--falkordb redis://host:port`` (or ``falkordb.url`` in caramba.yml) uses an external
server instead of the embedded one. Keep module-level imports light (typer, rich).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

FalkorOpt = Annotated[Optional[str], typer.Option("--falkordb", help="redis://host:port of an external FalkorDB")]
GraphOpt = Annotated[Optional[str], typer.Option("--graph", "-g", help="code graph name (default: the only one)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]

db_app = typer.Typer(help="The FalkorDB server (embedded in the workspace, or external).", no_args_is_help=True)
cg_app = typer.Typer(help="The code graph: index source code in FalkorDB and ask questions.", no_args_is_help=True)
console = Console()


def _emit(data: Any, as_json: bool, columns: tuple[str, ...] = (), title: str = "") -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    rows = data if isinstance(data, list) else [data]
    if not rows:
        console.print(f"[dim]{title}: no results[/]")
        return
    cols = columns or tuple(rows[0].keys())
    t = Table(title=title or None)
    for c in cols:  # fold, never elide: a qualname cut to "pkg.mod.Cla…" is lost to the reader
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*("" if r.get(c) is None else str(r.get(c)) for c in cols))
    console.print(t)


def _db(falkordb: str | None):  # -> falkordb.FalkorDB
    from caramba.codegraph.server import connect
    from caramba.workspace import Workspace

    return connect(Workspace(), url=falkordb)


def _graph(falkordb: str | None, graph: str | None):  # -> CodeGraph
    from caramba.codegraph.queries import CodeGraph

    return CodeGraph.open(_db(falkordb), graph)


# ---------------------------------------------------------------- db


@db_app.command("start")
def db_start(falkordb: FalkorOpt = None, as_json: JsonOpt = False) -> None:
    """Start the workspace's embedded FalkorDB (or check the external one); print where it listens."""
    from caramba.codegraph.server import ensure_falkordb

    ep = ensure_falkordb(None, url=falkordb)
    _emit(ep.to_dict(), as_json, ("url", "embedded", "pid", "data_dir"), "FalkorDB")


@db_app.command("status")
def db_status(falkordb: FalkorOpt = None, as_json: JsonOpt = False) -> None:
    """Is the server running, where, and which graphs it holds (starts nothing)."""
    from caramba.codegraph.server import falkordb_status

    st = falkordb_status(None, url=falkordb)
    if as_json:
        _emit(st.to_dict(), True)
        return
    ep = st.endpoint
    console.print(f"FalkorDB: {'[green]running[/]' if st.running else '[yellow]not running[/]'} "
                  f"({'embedded' if st.embedded else 'external'})")
    if ep:
        console.print(f"  url: {ep.url}" + (f"  pid: {ep.pid}" if ep.pid else ""))
    if st.data_dir:
        console.print(f"  data: {st.data_dir}")
    if st.running:
        console.print(f"  graphs: {', '.join(st.graphs) or '(none)'}  memory: {st.used_memory}")
    if st.problem:
        console.print(f"  [red]problem:[/] {st.problem}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the workspace's embedded FalkorDB (saves to disk first)."""
    from caramba.codegraph.server import stop_falkordb

    console.print("stopped" if stop_falkordb(None) else "not running")


# ---------------------------------------------------------------- codegraph


class _EventFile:
    """``--events FILE``: JSON lines a job manager follows — ``{ts, event: "progress", phase,
    done, total}`` (at most every 0.2 s, and on every phase change), then ``{ts, event:
    "finished", report}``. Appended and flushed line by line."""

    def __init__(self, path: Path) -> None:
        self.f = path.open("a", encoding="utf-8")
        self.last: tuple[str, float] = ("", 0.0)

    def write(self, event: str, **data: Any) -> None:
        import time

        self.f.write(json.dumps({"ts": time.time(), "event": event, **data}, default=str) + "\n")
        self.f.flush()

    def progress(self, phase: str, done: int, total: int) -> None:
        import time

        now = time.monotonic()
        if phase != self.last[0] or done == total or now - self.last[1] >= 0.2:
            self.last = (phase, now)
            self.write("progress", phase=phase, done=done, total=total)


def _sigterm_interrupts() -> None:
    """SIGTERM (a job's cancel) stops the sync like Ctrl-C: the lock is released and the
    live graph is untouched (the half-built copy is dropped by the next sync); exit 130."""
    import signal

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


@cg_app.command("sync")
def cg_sync(path: Annotated[Path, typer.Argument(help="root folder of the repository")],
            graph: Annotated[Optional[str], typer.Option("--graph", "-g", help="graph name (default: folder name)")] = None,
            falkordb: FalkorOpt = None, as_json: JsonOpt = False,
            events: Annotated[Optional[Path], typer.Option("--events", help="append progress and the final report as JSON lines to this file (for job managers)")] = None) -> None:
    """Index PATH incrementally (only changed files are parsed). SIGTERM or Ctrl-C stops it
    leaving the previous graph intact."""
    from caramba.codegraph.sync import sync_repository
    from caramba.engine.errors import CarambaError

    _sigterm_interrupts()
    sink = _EventFile(events) if events is not None else None
    try:
        r = sync_repository(path, db=_db(falkordb), graph=graph, progress=sink.progress if sink else None)
    except CarambaError as e:
        if sink is not None:  # the job manager reports it even when it is not our parent
            sink.write("error", message=e.render())
        raise
    if sink is not None:
        sink.write("finished", report=r.to_dict())
    if as_json:
        _emit(r.to_dict(), True)
        return
    console.print(f"graph [bold]{r.graph}[/]: {r.files} files, {r.parsed} parsed, {r.skipped} unchanged, "
                  f"{r.removed} removed, {r.relinked} re-linked in {r.seconds:.2f} s", soft_wrap=True)  # one line for grep
    if r.errors:
        _emit(r.errors, False, ("file", "line", "error"), "files that failed to parse")


@cg_app.command("query")
def cg_query(cypher: Annotated[str, typer.Argument(help="read-only Cypher")], graph: GraphOpt = None,
             falkordb: FalkorOpt = None, as_json: JsonOpt = False) -> None:
    """Run a read-only Cypher query (write clauses are refused)."""
    res = _graph(falkordb, graph).query(cypher)
    if as_json:
        _emit(res, True)
        return
    _emit([dict(zip(res["columns"], r)) for r in res["rows"]], False, tuple(res["columns"]), "query")
    if res["truncated"]:
        console.print(f"[yellow]only the first {len(res['rows'])} rows are shown[/]: add LIMIT/SKIP to page "
                      "through the rest, or aggregate (count, collect)", soft_wrap=True)


@cg_app.command("find")
def cg_find(symbol: str, graph: GraphOpt = None, falkordb: FalkorOpt = None, as_json: JsonOpt = False) -> None:
    """Symbols named SYMBOL (bare or qualified)."""
    _emit(_graph(falkordb, graph).find(symbol), as_json, ("kind", "qualname", "file", "line", "signature"), symbol)


@cg_app.command("callers")
def cg_callers(qualname: str, graph: GraphOpt = None, falkordb: FalkorOpt = None, as_json: JsonOpt = False) -> None:
    """Who calls QUALNAME."""
    _emit(_graph(falkordb, graph).callers(qualname), as_json, ("caller", "file", "line", "text"), f"callers of {qualname}")


@cg_app.command("callees")
def cg_callees(qualname: str, graph: GraphOpt = None, falkordb: FalkorOpt = None, as_json: JsonOpt = False) -> None:
    """What QUALNAME calls (resolved, then unresolved with their text)."""
    res = _graph(falkordb, graph).callees(qualname)
    if as_json:
        _emit(res, True)
        return
    _emit(res["resolved"], False, ("callee", "kind", "line", "text"), f"calls from {res['qualname']}")
    if res["unresolved"]:
        _emit(res["unresolved"], False, ("line", "text"), "unresolved calls")


@cg_app.command("subclasses")
def cg_subclasses(cls: Annotated[str, typer.Argument(metavar="CLASS")], graph: GraphOpt = None,
                  transitive: Annotated[bool, typer.Option("--transitive", "-t", help="all descendants")] = False,
                  falkordb: FalkorOpt = None, as_json: JsonOpt = False) -> None:
    """Direct (or, with --transitive, all) subclasses of CLASS."""
    _emit(_graph(falkordb, graph).subclasses(cls, transitive=transitive), as_json,
          ("qualname", "file", "line", "depth"), f"subclasses of {cls}")


@cg_app.command("imports")
def cg_imports(module: str, graph: GraphOpt = None, falkordb: FalkorOpt = None, as_json: JsonOpt = False) -> None:
    """What MODULE imports and who imports it."""
    res = _graph(falkordb, graph).imports(module)
    if as_json:
        _emit(res, True)
        return
    _emit(res["imports"], False, ("target", "kind", "line"), f"{res['module']} imports")
    if res["unresolved"]:
        console.print("outside the graph: " + ", ".join(res["unresolved"]))
    _emit(res["imported_by"], False, ("importer", "file", "line"), f"{res['module']} is imported by")


@cg_app.command("layer-usage")
def cg_layer_usage(type_name: Annotated[str, typer.Argument(metavar="TYPE")], graph: GraphOpt = None,
                   falkordb: FalkorOpt = None, as_json: JsonOpt = False) -> None:
    """Manifests that use layer/topology/model TYPE."""
    _emit(_graph(falkordb, graph).layer_usage(type_name), as_json, ("manifest", "name", "line"), f"uses of {type_name}")


@cg_app.command("summary")
def cg_summary(graph: GraphOpt = None, falkordb: FalkorOpt = None, as_json: JsonOpt = False) -> None:
    """Counts per node label and edge type; files that failed to parse."""
    s = _graph(falkordb, graph).summary()
    if as_json:
        _emit(s, True)
        return
    console.print(f"graph [bold]{s['graph']}[/] ({s['root']})")
    _emit([{"label": k, "count": v} for k, v in s["nodes"].items()], False, ("label", "count"), "nodes")
    _emit([{"type": k, "count": v} for k, v in s["edges"].items()], False, ("type", "count"), "edges")
    if s["errors"]:
        _emit(s["errors"], False, ("file", "line", "error"), "files that failed to parse")


def register(app: typer.Typer) -> None:
    """Add ``db`` and ``codegraph`` to the root app."""
    app.add_typer(db_app, name="db")
    app.add_typer(cg_app, name="codegraph")
