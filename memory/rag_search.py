"""Search the retrieval index: vector, keyword (BM25) or hybrid (reciprocal-rank fusion).

* ``vector`` — TQL ``COSINE_SIMILARITY(embedding, ARRAY[…])`` over the rows that pass the
  filters, best first.
* ``keyword`` — TQL ``BM25_SIMILARITY(text, '…')`` on the BM25 index of ``text``.
* ``hybrid`` (default) — both lists (``max(4k, 100)`` candidates each) fused by reciprocal
  rank, ``score = Σ 1 / (60 + rank)`` (Cormack et al. 2009): robust to the two scores'
  different scales, and a chunk found by both rises to the top. The candidate floor keeps
  the ranking independent of ``k``: ``-k 3`` gives the first three hits of ``-k 10`` (with
  only ``4k`` candidates, a chunk ranked 13th by both lists would vanish from ``-k 3``).

Filters: ``kind`` (``code|paper|run|note``) and ``path_prefix`` (a workspace-relative
prefix such as ``engine/`` — applied in TQL with ``LIKE`` and then exactly in Python,
since ``_`` is a ``LIKE`` wildcard).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from caramba.memory.rag_index import RagIndex
from caramba.memory.rag_store import KINDS, RagError, quote

Mode = Literal["hybrid", "vector", "keyword"]
RRF_K = 60
HYBRID_CANDIDATES = 100  # per list, at least (see the module docstring)


@dataclass(frozen=True)
class Hit:
    path: str
    start: int
    end: int
    kind: str
    title: str
    text: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "start": self.start, "end": self.end, "kind": self.kind,
                "title": self.title, "score": round(self.score, 6), "text": self.text}


def _where(kind: str | None, path_prefix: str | None) -> str:
    conds: list[str] = []
    if kind is not None:
        if kind not in KINDS:
            raise RagError(f"unknown kind '{kind}'", fix=f"use one of {', '.join(KINDS)}")
        conds.append(f"kind = {quote(kind)}")
    if path_prefix:
        conds.append(f"path LIKE {quote(path_prefix.replace('%', '') + '%')}")
    return (" WHERE " + " AND ".join(conds)) if conds else ""


def _hits(view: Any, scores: list[float] | None) -> list[Hit]:
    n = len(view)
    if n == 0:
        return []
    cols = {c: view[c][:] for c in ("path", "start", "end", "kind", "title", "text")}
    return [Hit(str(cols["path"][i]), int(cols["start"][i]), int(cols["end"][i]), str(cols["kind"][i]),
                str(cols["title"][i]), str(cols["text"][i]), float(scores[i]) if scores is not None else 0.0)
            for i in range(n)]


def vector_search(index: RagIndex, query: str, k: int, where: str) -> list[Hit]:
    vec = index.embedder.embed([query])[0]
    arr = "ARRAY[" + ",".join(f"{x:.7g}" for x in vec.tolist()) + "]"
    view = index.store.query(f"SELECT *, COSINE_SIMILARITY(embedding, {arr}) AS score{where} "
                             f"ORDER BY COSINE_SIMILARITY(embedding, {arr}) DESC LIMIT {int(k)}")
    return _hits(view, [float(s) for s in view["score"][:]] if len(view) else None)


def keyword_search(index: RagIndex, query: str, k: int, where: str) -> list[Hit]:
    words = re.findall(r"[A-Za-z0-9_]+", query)
    if not words:
        return []
    q = quote(" ".join(words))
    view = index.store.query(f"SELECT *{where} ORDER BY BM25_SIMILARITY(text, {q}) DESC LIMIT {int(k)}")
    hits = _hits(view, None)
    return [Hit(h.path, h.start, h.end, h.kind, h.title, h.text, 1.0 / (1 + r)) for r, h in enumerate(hits)]


def search(index: RagIndex, query: str, *, k: int = 10, kind: str | None = None,
           path_prefix: str | None = None, mode: Mode = "hybrid") -> list[Hit]:
    """The ``k`` best chunks for ``query`` (see the module docstring)."""
    if k < 1:
        raise RagError(f"k must be >= 1, got {k}", fix="pass -k 10 (or any positive number)")
    if mode not in ("hybrid", "vector", "keyword"):
        raise RagError(f"unknown search mode '{mode}'", fix="use hybrid, vector or keyword")
    if not query.strip():
        raise RagError("empty search query", fix="pass the words to search for")
    index.store.open()  # a clear error when there is no index yet
    where = _where(kind, path_prefix)
    fetch = k if mode != "hybrid" else max(4 * k, HYBRID_CANDIDATES)
    if path_prefix:
        fetch *= 4  # LIKE is a superset of the exact prefix match
    lists: list[list[Hit]] = []
    if mode in ("hybrid", "vector"):
        lists.append(vector_search(index, query, fetch, where))
    if mode in ("hybrid", "keyword"):
        lists.append(keyword_search(index, query, fetch, where))
    if path_prefix:
        lists = [[h for h in hits if h.path.startswith(path_prefix)] for hits in lists]
    if mode != "hybrid":
        return lists[0][:k]
    fused: dict[tuple[str, int, str], float] = {}
    best: dict[tuple[str, int, str], Hit] = {}
    for hits in lists:
        for rank, h in enumerate(hits):
            key = (h.path, h.start, h.title)
            fused[key] = fused.get(key, 0.0) + 1.0 / (RRF_K + rank + 1)
            best.setdefault(key, h)
    order = sorted(fused, key=lambda key: -fused[key])[:k]
    return [Hit(**{**best[key].__dict__, "score": fused[key]}) for key in order]
