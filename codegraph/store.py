"""The code graph's schema in FalkorDB and the batched (UNWIND) statements that write it.

Graph ``code:<name>``, one per repository. Nodes (every code symbol also carries the
label ``Symbol``, indexed on ``qualname`` and ``file``):

* ``Repository {name, root, synced_at}`` -[:CONTAINS]-> ``File {path, hash, lines, language, error, error_line}``
* ``File`` -[:CONTAINS]-> ``Module`` | ``Manifest {path, name}``
* ``Module``/``Class``/``Function`` -[:DEFINES]-> ``Class``, ``Function`` (methods also
  ``:Method``), ``Variable``. Symbol properties: ``qualname, name, kind, file, line,
  end_line, signature, decorators, docstring, is_async, bases`` (source text),
  ``unresolved_calls`` (``"line:text"``), and on modules ``aliases`` / ``unresolved_imports``.
* Cross references: ``CALLS {line, text}``, ``INHERITS``, ``IMPORTS {line, name}``,
  ``DECORATED_BY {text}`` between symbols; ``Manifest -[:USES_LAYER {line}]-> LayerType {name}``.
"""

from __future__ import annotations

from typing import Any, Iterable

from caramba.codegraph.manifests import ManifestFacts
from caramba.codegraph.parse import FileFacts
from caramba.codegraph.resolve import Links

GRAPH_PREFIX = "code:"
BATCH = 2000  # rows per UNWIND: large enough to amortise round trips, small enough for the server's arg limits
CROSS_EDGES = "CALLS|INHERITS|IMPORTS|DECORATED_BY"
_LABEL = {"module": "Module", "class": "Class", "function": "Function", "method": "Function:Method",
          "variable": "Variable"}

INDICES = [("Symbol", "qualname"), ("Symbol", "file"), ("Symbol", "name"), ("File", "path"),
           ("Manifest", "file"), ("LayerType", "name")]


def graph_key(name: str) -> str:
    return f"{GRAPH_PREFIX}{name}"


def _chunks(rows: list[dict], n: int = BATCH) -> Iterable[list[dict]]:
    for i in range(0, len(rows), n):
        yield rows[i:i + n]


def run_batched(graph: Any, cypher: str, rows: list[dict], tick: Any = None) -> None:
    for chunk in _chunks(rows):
        graph.query(cypher, {"rows": chunk})
        if tick is not None:
            tick()


def create_indices(graph: Any) -> None:
    for label, prop in INDICES:
        graph.query(f"CREATE INDEX FOR (n:{label}) ON (n.{prop})")


def file_hashes(graph: Any) -> dict[str, str]:
    res = graph.ro_query("MATCH (f:File) RETURN f.path, f.hash").result_set
    return {p: h for p, h in res}


def delete_files(graph: Any, paths: list[str], tick: Any = None) -> None:
    """Remove files and everything they define (their incoming edges go with them)."""
    rows = [{"p": p} for p in paths]
    run_batched(graph, "UNWIND $rows AS r MATCH (s:Symbol {file: r.p}) DETACH DELETE s", rows, tick)
    run_batched(graph, "UNWIND $rows AS r MATCH (m:Manifest {file: r.p}) DETACH DELETE m", rows, tick)
    run_batched(graph, "UNWIND $rows AS r MATCH (f:File {path: r.p}) DETACH DELETE f", rows, tick)
    graph.query("MATCH (t:LayerType) WHERE NOT (t)<-[:USES_LAYER]-() DELETE t")


def dependents(graph: Any, paths: list[str], new_modules: list[str]) -> set[str]:
    """Files outside ``paths`` whose cross references point into ``paths``, or whose
    unresolved imports name one of ``new_modules`` (they may resolve now)."""
    out: set[str] = set()
    if paths:
        q = (f"UNWIND $paths AS p MATCH (t:Symbol)-[:{CROSS_EDGES}]->(s:Symbol {{file: p}}) "
             "WHERE NOT t.file IN $paths RETURN DISTINCT t.file")
        out |= {r[0] for r in graph.ro_query(q, {"paths": paths}).result_set}
    if new_modules:
        q = ("MATCH (m:Module) WHERE size(m.unresolved_imports) > 0 AND any(x IN m.unresolved_imports WHERE "
             "(x IN $mods OR any(p IN $prefixes WHERE x STARTS WITH p))) RETURN DISTINCT m.file")
        params = {"mods": new_modules, "prefixes": [m + "." for m in new_modules]}
        out |= {r[0] for r in graph.ro_query(q, params).result_set}
    return out - set(paths)


def load_table_rows(graph: Any) -> tuple[list, list, list]:
    """(qualname, kind) of every symbol; (class, base) INHERITS pairs; module alias lists."""
    kinds = graph.ro_query("MATCH (s:Symbol) RETURN s.qualname, s.kind").result_set
    bases = graph.ro_query("MATCH (c:Class)-[:INHERITS]->(b:Class) RETURN c.qualname, b.qualname").result_set
    aliases = graph.ro_query("MATCH (m:Module) RETURN m.aliases").result_set
    return kinds, bases, aliases


def write_repository(graph: Any, name: str, root: str, synced_at: float) -> None:
    graph.query("MERGE (r:Repository {name: $n}) SET r.root = $root, r.synced_at = $t",
                {"n": name, "root": root, "t": synced_at})


def write_counts(graph: Any) -> None:
    """Store node/edge counts on the Repository node (JSON): counting edges scans them all
    (~0.4 s for the stdlib), so it is done once per sync instead of once per summary."""
    import json

    labels = graph.ro_query("MATCH (n) UNWIND labels(n) AS l RETURN l, count(*)").result_set
    edges = graph.ro_query("MATCH ()-[e]->() RETURN type(e), count(*)").result_set
    counts = {"nodes": dict(sorted(labels)), "edges": dict(sorted(edges))}
    graph.query("MATCH (r:Repository) SET r.counts = $c", {"c": json.dumps(counts)})


def write_python_files(graph: Any, files: list[FileFacts], tick: Any = None) -> None:
    """Create File, symbol and DEFINES/CONTAINS structure for freshly parsed files."""
    frows = [{"path": f.path, "hash": f.sha, "lines": f.lines, "language": "python",
              "error": f.error[1] if f.error else None, "error_line": f.error[0] if f.error else None} for f in files]
    run_batched(graph, "MATCH (repo:Repository) UNWIND $rows AS r CREATE (repo)-[:CONTAINS]->(f:File) SET f += r",
                frows, tick)
    by_label: dict[str, list[dict]] = {}
    defines: list[dict] = []
    seen: set[str] = set()
    for f in files:
        aliases = [f"{i.owner}|{i.bound}|{i.target}" for i in f.imports if i.bound]
        for s in f.symbols:
            if s.qualname in seen:
                continue  # redefinition (property setter, if/else variants): the first one is the node
            seen.add(s.qualname)
            row = {"qualname": s.qualname, "name": s.name, "kind": s.kind, "file": f.path, "line": s.line,
                   "end_line": s.end_line, "signature": s.signature, "decorators": s.decorators,
                   "docstring": s.docstring, "is_async": s.is_async, "bases": s.base_texts, "unresolved_calls": []}
            if s.kind == "module":
                row.update(aliases=aliases, unresolved_imports=[])
            by_label.setdefault(_LABEL[s.kind], []).append(row)
            if s.parent is not None:
                defines.append({"src": s.parent, "dst": s.qualname})
    for label, rows in by_label.items():
        run_batched(graph, f"UNWIND $rows AS r CREATE (n:Symbol:{label}) SET n += r", rows, tick)
    mods = [{"path": f.path, "q": f.module} for f in files if not f.error]
    run_batched(graph, "UNWIND $rows AS r MATCH (f:File {path: r.path}), (m:Symbol {qualname: r.q}) "
                       "CREATE (f)-[:CONTAINS]->(m)", mods, tick)
    run_batched(graph, "UNWIND $rows AS r MATCH (a:Symbol {qualname: r.src}), (b:Symbol {qualname: r.dst}) "
                       "CREATE (a)-[:DEFINES]->(b)", defines, tick)


def clear_links(graph: Any, paths: list[str], tick: Any = None) -> None:
    """Drop the cross references going out of these files (before they are linked again)."""
    rows = [{"p": p} for p in paths]
    run_batched(graph, f"UNWIND $rows AS r MATCH (s:Symbol {{file: r.p}})-[e:{CROSS_EDGES}]->() DELETE e", rows, tick)
    run_batched(graph, "UNWIND $rows AS r MATCH (s:Symbol {file: r.p}) SET s.unresolved_calls = []", rows, tick)


def write_links(graph: Any, links: list[tuple[FileFacts, Links]], tick: Any = None) -> None:
    calls, inherits, imports, decorated, unresolved, unresolved_imports = [], [], [], [], [], []
    for f, lk in links:
        calls += lk.calls
        inherits += lk.inherits
        imports += lk.imports
        decorated += lk.decorated
        unresolved += [{"q": q, "u": u} for q, u in lk.unresolved.items()]
        unresolved_imports.append({"q": f.module, "u": lk.unresolved_imports})
    match = "UNWIND $rows AS r MATCH (a:Symbol {qualname: r.src}), (b:Symbol {qualname: r.dst}) "
    run_batched(graph, match + "CREATE (a)-[:CALLS {line: r.line, text: r.text}]->(b)", calls, tick)
    run_batched(graph, match + "CREATE (a)-[:INHERITS]->(b)", inherits, tick)
    run_batched(graph, match + "CREATE (a)-[:IMPORTS {line: r.line, name: r.name}]->(b)", imports, tick)
    run_batched(graph, match + "CREATE (a)-[:DECORATED_BY {text: r.text}]->(b)", decorated, tick)
    run_batched(graph, "UNWIND $rows AS r MATCH (s:Symbol {qualname: r.q}) SET s.unresolved_calls = r.u",
                unresolved, tick)
    run_batched(graph, "UNWIND $rows AS r MATCH (s:Symbol {qualname: r.q}) SET s.unresolved_imports = r.u",
                unresolved_imports, tick)


def write_manifests(graph: Any, files: list[ManifestFacts], tick: Any = None) -> None:
    frows = [{"path": f.path, "hash": f.sha, "lines": f.lines, "language": "yaml",
              "error": f.error[1] if f.error else None, "error_line": f.error[0] if f.error else None} for f in files]
    run_batched(graph, "MATCH (repo:Repository) UNWIND $rows AS r CREATE (repo)-[:CONTAINS]->(f:File) SET f += r",
                frows, tick)
    mrows = [{"file": f.path, "name": f.name} for f in files if f.is_manifest]
    run_batched(graph, "UNWIND $rows AS r MATCH (f:File {path: r.file}) "
                       "CREATE (f)-[:CONTAINS]->(:Manifest {file: r.file, path: r.file, name: r.name})", mrows, tick)
    uses = [{"file": f.path, "t": t, "line": line} for f in files for t, line in f.uses]
    run_batched(graph, "UNWIND $rows AS r MATCH (m:Manifest {file: r.file}) MERGE (t:LayerType {name: r.t}) "
                       "CREATE (m)-[:USES_LAYER {line: r.line}]->(t)", uses, tick)
