"""The DeepLake dataset behind ``caramba rag``: schema, open/create, rows in and out.

One dataset (default ``<workspace>/.caramba/rag``; ``memory.deeplake_path`` may name any
DeepLake path, e.g. ``s3://…``) with one row per chunk:

=============  ==========================  ============================================
column         type                        meaning
=============  ==========================  ============================================
text           Text, BM25 index            the chunk (keyword search uses BM25 over it)
embedding      Array(float32, [dim])       l2-normalised vector of ``text`` (exact search)
path           Text                        source: workspace-relative path (else absolute)
start, end     Int32                       1-based inclusive span: lines (pages for PDF)
kind           Text                        ``code`` | ``paper`` | ``run`` | ``note``
title          Text                        function/class/section name
content_hash   Text                        sha256 of ``text`` (reuse embeddings on change)
source_hash    Text                        sha256 of the whole source (skip unchanged)
indexed_at     Float64                     unix time the row was written
=============  ==========================  ============================================

The dataset metadata records the embedder (``embedder``, ``dim``); opening it with a
different embedder is refused (vectors of two models are not comparable).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from caramba.engine.errors import CarambaError

KINDS = ("code", "paper", "run", "note")


class RagError(CarambaError):
    """A problem with the retrieval index."""


@dataclass(frozen=True)
class Row:
    text: str
    path: str
    start: int
    end: int
    kind: str
    title: str
    content_hash: str
    source_hash: str
    indexed_at: float


def _schema(dim: int) -> dict[str, Any]:
    from deeplake import types as T

    # embedding: a plain float32 array, so COSINE_SIMILARITY is an exact scan. DeepLake's
    # Embedding type builds an approximate clustered index whose recall on hashed sparse
    # vectors varied run to run (0.25-0.38 recall@10 on bench/rag.py); exact search is
    # deterministic and fast enough for workspace-sized indexes (tens of thousands of rows).
    return {"text": T.Text(T.BM25), "embedding": T.Array(T.Float32(), shape=[dim]), "path": T.Text(),
            "start": T.Int32(), "end": T.Int32(), "kind": T.Text(), "title": T.Text(),
            "content_hash": T.Text(), "source_hash": T.Text(), "indexed_at": T.Float64()}


def quote(value: str) -> str:
    """A TQL string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


class RagStore:
    """Open (or lazily create) the dataset at ``url`` for one embedder."""

    def __init__(self, url: str, embedder_name: str) -> None:
        self.url = url
        self.embedder_name = embedder_name
        self._ds: Any = None

    def exists(self) -> bool:
        import deeplake

        return bool(deeplake.exists(self.url))

    def _check_embedder(self, ds: Any) -> None:
        stored = ds.metadata["embedder"] if "embedder" in ds.metadata.keys() else None
        if stored != self.embedder_name:
            raise RagError(f"the index at {self.url} was built with embedder '{stored}', "
                           f"but memory.embedder is now '{self.embedder_name}'",
                           fix="set memory.embedder back, or rebuild: `caramba rag index --rebuild PATH…`")

    def open(self, *, dim: int | None = None, create: bool = False) -> Any:
        """The dataset; created with ``dim``-wide embeddings when ``create`` and absent."""
        import deeplake

        if self._ds is not None:
            return self._ds
        if self.exists():
            ds = deeplake.open(self.url)
            self._check_embedder(ds)
        elif create:
            if dim is None:
                raise RagError("internal: creating the index needs the embedding size")
            if not self.url.startswith(("s3://", "gcs://", "gs://", "azure://", "al://", "hf://", "mem://")):
                Path(self.url.removeprefix("file://")).parent.mkdir(parents=True, exist_ok=True)
            ds = deeplake.create(self.url, schema=_schema(dim))
            ds.metadata["embedder"] = self.embedder_name
            ds.metadata["dim"] = dim
            ds.commit("create caramba rag index")
        else:
            raise RagError(f"no retrieval index at {self.url}",
                           fix="build it first: `caramba rag index PATH…`")
        # Always: the BM25 index is updated on every commit. In DeepLake's default
        # "Automatic" mode a small dataset's index can stay unbuilt, and every keyword
        # query then scans all rows (seconds instead of milliseconds).
        ds.indexing_mode = deeplake.IndexingMode.Always
        self._ds = ds
        return ds

    def delete(self) -> None:
        import deeplake

        self._ds = None
        if self.exists():
            deeplake.delete(self.url)

    # -- reading ------------------------------------------------------------------------
    def column(self, name: str) -> list[Any]:
        ds = self.open()
        return list(ds[name][:]) if len(ds) else []

    def embeddings(self, rows: list[int]) -> np.ndarray:
        ds = self.open()
        return np.stack([np.asarray(ds["embedding"][i], dtype=np.float32) for i in rows]) if rows else np.zeros((0, 0), np.float32)

    def __len__(self) -> int:
        return len(self.open()) if self.exists() else 0

    # -- writing ------------------------------------------------------------------------
    def append(self, rows: list[Row], vectors: np.ndarray) -> None:
        if not rows:
            return
        ds = self.open(dim=int(vectors.shape[1]), create=True)
        dim = int(ds.metadata["dim"])
        if vectors.shape[1] != dim:
            raise RagError(f"embedding size {vectors.shape[1]} does not match the index ({dim})",
                           fix="rebuild the index: `caramba rag index --rebuild PATH…`")
        cols: dict[str, list[Any]] = {k: [getattr(r, k) for r in rows] for k in Row.__dataclass_fields__}
        cols["embedding"] = [v.astype(np.float32) for v in vectors]
        ds.append(cols)

    def delete_rows(self, rows: list[int]) -> None:
        ds = self.open()
        for i in sorted(set(rows), reverse=True):
            ds.delete(i)

    def commit(self, message: str) -> None:
        """Commit (indexes are brought up to date on commit, see :meth:`open`)."""
        if self._ds is not None:
            self._ds.commit(message)

    def query(self, tql: str) -> Any:
        return self.open().query(tql)
