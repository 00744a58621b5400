"""Questions to a code graph: read-only Cypher and the canned questions the MCP tools expose.

    cg = CodeGraph.open(db, "myrepo")          # db: falkordb.FalkorDB (see server.connect)
    cg.find("build_model")                     # [{kind, qualname, file, line, signature, docstring}]
    cg.callers("pkg.model.build_model")        # [{caller, file, line, text}]
    cg.callees("pkg.train.main")               # {"resolved": [...], "unresolved": [{line, text}]}
    cg.subclasses("Topology", transitive=True) # [{qualname, file, line, depth}]
    cg.imports("pkg.model")                    # {"imports": [...], "imported_by": [...]}
    cg.layer_usage("SSMLayer")                 # [{manifest, name, line}]
    cg.summary()                               # counts per label / edge type, files with errors
    cg.query("MATCH (c:Class) RETURN c.qualname LIMIT 5")   # {"columns": [...], "rows": [...]}

Every method is side-effect free (``GRAPH.RO_QUERY``: the server itself refuses writes),
returns plain dicts/lists ready for JSON, and raises :class:`CodeGraphError` (a
``CarambaError``) with a fix for unknown graphs/symbols, ambiguous names and bad Cypher.
A symbol argument may be a qualified name or, when unambiguous, a bare name.
"""

from __future__ import annotations

import json
import re
from typing import Any

from caramba.codegraph.store import GRAPH_PREFIX, graph_key
from caramba.engine.errors import CarambaError

QUERY_TIMEOUT_MS = 10_000  # a runaway MATCH must not hang an agent
# write clauses, and procedures that create/drop (indexes, constraints); GRAPH.RO_QUERY is the real guard
_WRITE = re.compile(r"\b(CREATE|MERGE|SET|DELETE|DETACH|REMOVE|DROP|LOAD\s+CSV|FOREACH)\b"
                    r"|\bCALL\s+db\.[\w.]*(create|drop|delete|set)", re.IGNORECASE)
_STRINGS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`")


class CodeGraphError(CarambaError):
    """A code-graph question that cannot be answered as asked."""


def list_code_graphs(db: Any) -> list[str]:
    return sorted(g[len(GRAPH_PREFIX):] for g in db.list_graphs()
                  if g.startswith(GRAPH_PREFIX) and not g.endswith(".sync"))


def _plain(v: Any) -> Any:
    """FalkorDB values → JSON-friendly values (nodes/edges become property dicts)."""
    if hasattr(v, "labels") and hasattr(v, "properties"):
        return {"labels": list(v.labels), **v.properties}
    if hasattr(v, "relation") and hasattr(v, "properties"):
        return {"type": v.relation, **v.properties}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


class CodeGraph:
    """A read-only handle on graph ``code:<name>``."""

    def __init__(self, db: Any, name: str) -> None:
        self.db, self.name = db, name
        self.graph = db.select_graph(graph_key(name))

    @classmethod
    def open(cls, db: Any, name: str | None = None) -> "CodeGraph":
        """Open a synced graph; ``name=None`` picks the only one (error if none or several)."""
        names = list_code_graphs(db)
        if name is None:
            if len(names) != 1:
                raise CodeGraphError(f"{'no code graph exists' if not names else 'several code graphs exist: ' + ', '.join(names)}",
                                     fix="run `caramba codegraph sync PATH` first" if not names else "pass --graph NAME")
            name = names[0]
        elif name not in names:
            raise CodeGraphError(f"no code graph named '{name}' (have: {', '.join(names) or 'none'})",
                                 fix=f"run `caramba codegraph sync PATH --graph {name}`")
        return cls(db, name)

    def _ro(self, cypher: str, params: dict | None = None) -> list[list[Any]]:
        return self._ro_result(cypher, params).result_set

    def _ro_result(self, cypher: str, params: dict | None = None) -> Any:
        import redis

        try:
            return self.graph.ro_query(cypher, params, timeout=QUERY_TIMEOUT_MS)
        except redis.ResponseError as e:
            msg = str(e)
            if "read-only" in msg or "read only" in msg:
                raise CodeGraphError("the query writes to the graph; codegraph queries are read-only",
                                     fix="use MATCH … RETURN only (the graph is rebuilt by `caramba codegraph sync`)") from None
            if "timed out" in msg.lower():
                raise CodeGraphError(f"the query ran past the {QUERY_TIMEOUT_MS / 1000:g} s limit and was stopped",
                                     fix="narrow it: anchor the MATCH on a label and property (e.g. "
                                         "{qualname: '…'}), avoid unconnected patterns (a, b) that multiply, "
                                         "add LIMIT") from None
            raise CodeGraphError(f"FalkorDB rejected the query: {msg}",
                                 fix="check the Cypher syntax; labels: Repository File Module Class Function Method "
                                     "Variable Manifest LayerType; edges: CONTAINS DEFINES IMPORTS CALLS INHERITS "
                                     "DECORATED_BY USES_LAYER") from None

    # ---------------------------------------------------------------- free-form

    def query(self, cypher: str, params: dict | None = None, *, limit: int = 1000) -> dict[str, Any]:
        """Run read-only Cypher. Write clauses are refused before they reach the server (and
        the server refuses them again: ``GRAPH.RO_QUERY``)."""
        bare = _STRINGS.sub("''", cypher)
        m = _WRITE.search(bare)
        if m:
            raise CodeGraphError(f"write clause '{m.group(0).strip()}' refused: codegraph queries are read-only",
                                 fix="use MATCH … RETURN only (the graph is rebuilt by `caramba codegraph sync`)")
        res = self._ro_result(cypher, params)
        cols = [c[1] if isinstance(c, (list, tuple)) else c for c in res.header]
        rows = [[_plain(v) for v in row] for row in res.result_set[:limit]]
        return {"columns": cols, "rows": rows, "truncated": len(res.result_set) > limit}

    # ---------------------------------------------------------------- canned

    def resolve(self, symbol: str, kinds: tuple[str, ...] = ()) -> str:
        """A qualified name for ``symbol`` (qualified already, or an unambiguous bare name)."""
        hits = self._ro("MATCH (s:Symbol {qualname: $q}) RETURN s.qualname, s.kind", {"q": symbol})
        if not hits:
            hits = self._ro("MATCH (s:Symbol {name: $q}) RETURN s.qualname, s.kind", {"q": symbol})
        if kinds:
            hits = [h for h in hits if h[1] in kinds]
        if len(hits) == 1:
            return hits[0][0]
        what = "/".join(kinds) or "symbol"
        if not hits:
            raise CodeGraphError(f"no {what} '{symbol}' in code graph '{self.name}'",
                                 fix=f"search with `caramba codegraph find {symbol.split('.')[-1]}`")
        raise CodeGraphError(f"'{symbol}' is ambiguous: " + ", ".join(sorted(h[0] for h in hits)[:10]),
                             fix="pass the qualified name")

    def find(self, symbol: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """Symbols whose name or qualified name is ``symbol`` (or ends with ``.symbol``)."""
        # every match has name == the last dotted part: start from the name index, then filter
        rows = self._ro(
            "MATCH (s:Symbol {name: $last}) WHERE s.name = $n OR s.qualname = $n OR s.qualname ENDS WITH $dotted "
            "RETURN s.kind, s.qualname, s.file, s.line, s.signature, s.docstring ORDER BY s.qualname LIMIT $lim",
            {"n": symbol, "last": symbol.rsplit(".", 1)[-1], "dotted": "." + symbol, "lim": limit})
        keys = ("kind", "qualname", "file", "line", "signature", "docstring")
        return [dict(zip(keys, r)) for r in rows]

    def callers(self, qualname: str) -> list[dict[str, Any]]:
        q = self.resolve(qualname)
        rows = self._ro("MATCH (a:Symbol)-[c:CALLS]->(:Symbol {qualname: $q}) "
                        "RETURN a.qualname, a.file, c.line, c.text ORDER BY a.qualname, c.line", {"q": q})
        return [dict(zip(("caller", "file", "line", "text"), r)) for r in rows]

    def callees(self, qualname: str) -> dict[str, Any]:
        q = self.resolve(qualname)
        rows = self._ro("MATCH (:Symbol {qualname: $q})-[c:CALLS]->(b:Symbol) "
                        "RETURN b.qualname, b.kind, c.line, c.text ORDER BY c.line, b.qualname", {"q": q})
        unresolved = self._ro("MATCH (s:Symbol {qualname: $q}) RETURN s.unresolved_calls", {"q": q})[0][0] or []
        return {"qualname": q,
                "resolved": [dict(zip(("callee", "kind", "line", "text"), r)) for r in rows],
                "unresolved": [{"line": int(u.split(":", 1)[0]), "text": u.split(":", 1)[1]} for u in unresolved]}

    def subclasses(self, cls: str, *, transitive: bool = False) -> list[dict[str, Any]]:
        """Direct subclasses, or all descendants with their depth (breadth-first, one indexed
        query per level: cheaper than materialising every inheritance path)."""
        q = self.resolve(cls, ("class",))
        out: dict[str, dict[str, Any]] = {}
        frontier, depth = [q], 0
        while frontier:
            depth += 1
            rows = self._ro("UNWIND $qs AS q MATCH (:Symbol {qualname: q})<-[:INHERITS]-(s:Class) "
                            "RETURN DISTINCT s.qualname, s.file, s.line", {"qs": frontier})
            frontier = []
            for name, file, line in rows:
                if name not in out and name != q:
                    out[name] = {"qualname": name, "file": file, "line": line, "depth": depth}
                    frontier.append(name)
            if not transitive:
                break
        return sorted(out.values(), key=lambda r: r["qualname"])

    def imports(self, module: str) -> dict[str, Any]:
        q = self.resolve(module, ("module",))
        file, unresolved = self._ro("MATCH (m:Symbol {qualname: $q}) RETURN m.file, m.unresolved_imports", {"q": q})[0]
        # a module's symbols share its file: the file index finds them without a scan
        out = self._ro("MATCH (s:Symbol {file: $f})-[i:IMPORTS]->(t:Symbol) "
                       "RETURN DISTINCT t.qualname, t.kind, i.line ORDER BY t.qualname", {"f": file})
        into = self._ro("MATCH (t:Symbol {file: $f})<-[i:IMPORTS]-(s:Symbol) "
                        "RETURN DISTINCT s.file, s.qualname, i.line ORDER BY s.file", {"f": file})
        unresolved = unresolved or []
        return {"module": q,
                "imports": [dict(zip(("target", "kind", "line"), r)) for r in out],
                "unresolved": sorted(set(unresolved)),
                "imported_by": [dict(zip(("file", "importer", "line"), r)) for r in into]}

    def layer_usage(self, type_name: str) -> list[dict[str, Any]]:
        rows = self._ro("MATCH (m:Manifest)-[u:USES_LAYER]->(:LayerType {name: $t}) "
                        "RETURN m.path, m.name, u.line ORDER BY m.path, u.line", {"t": type_name})
        return [dict(zip(("manifest", "name", "line"), r)) for r in rows]

    def summary(self) -> dict[str, Any]:
        errors = self._ro("MATCH (f:File) WHERE f.error IS NOT NULL RETURN f.path, f.error_line, f.error ORDER BY f.path")
        root, synced_at, counts = self._ro("MATCH (r:Repository) RETURN r.root, r.synced_at, r.counts")[0]
        counts = json.loads(counts)  # written by every sync (store.write_counts)
        return {"graph": self.name, "root": root, "synced_at": synced_at,
                "nodes": counts["nodes"], "edges": counts["edges"],
                "errors": [dict(zip(("file", "line", "error"), r)) for r in errors]}
