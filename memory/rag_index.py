"""Incremental indexing of code, papers, notes and runs into the DeepLake store.

``RagIndex(workspace).index([paths…])`` walks each path (a file, a folder of sources, a
folder of papers, or a runs folder), and for every source:

* unchanged (same sha256 of its bytes as the rows already stored) → skipped, nothing
  re-embedded;
* new or changed → re-chunked; chunks whose text hash is already stored for that source
  reuse their stored vector, only the others are embedded; the old rows are replaced;
* previously indexed under one of the given paths but now gone → its rows are removed.

A directory holding ``run.json`` is a run (``kind="run"``, summary of
:mod:`caramba.memory.runs`). Hidden folders, ``__pycache__``, ``.venv``/``venv``,
``node_modules``, ``build``/``dist`` and ``.caramba`` are skipped. Symlinked folders are
not entered; a symlinked file counts only when it points inside the folder being walked, and
then as its target (one source, stored once, however many paths lead to it).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from caramba.llm.embedders import Embedder, embedder_from_config
from caramba.memory.chunking import CODE_SUFFIXES, PDF_SUFFIXES, TEXT_SUFFIXES, Chunk, chunk_file
from caramba.memory.rag_store import KINDS, RagError, RagStore, Row
from caramba.memory.runs import read_run
from caramba.workspace import Workspace

_SKIP_DIRS = frozenset({"__pycache__", ".venv", "venv", "node_modules", "build", "dist",
                        ".caramba", "site-packages", ".git"})
_SUFFIXES = CODE_SUFFIXES | TEXT_SUFFIXES | PDF_SUFFIXES


@dataclass
class IndexReport:
    sources_seen: int = 0
    sources_indexed: int = 0
    sources_unchanged: int = 0
    sources_removed: int = 0
    chunks_added: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    total_chunks: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


def store_for(ws: Workspace, embedder: Embedder) -> RagStore:
    cfg = ws.config()
    url = cfg.memory.deeplake_path or str(ws.state_dir / "rag")
    return RagStore(url, embedder.name)


def default_embedder(ws: Workspace) -> Embedder:
    cfg = ws.config()
    return embedder_from_config(cfg.memory.embedder, cfg.llm.model, cfg.llm.api_base, cfg.llm.api_key_env)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class RagIndex:
    """The retrieval index of a workspace (see the module docstring)."""

    def __init__(self, ws: Workspace, embedder: Embedder | None = None, *,
                 store: RagStore | None = None) -> None:
        self.ws = ws
        self.embedder = embedder or default_embedder(ws)
        self.store = store if store is not None else store_for(ws, self.embedder)

    def display(self, p: Path) -> str:
        p = p.resolve()
        return p.relative_to(self.ws.root).as_posix() if p.is_relative_to(self.ws.root) else p.as_posix()

    def _walk(self, root: Path) -> list[tuple[Path, str]]:
        """(source, kind-or-"") pairs under ``root``; a run directory is one source."""
        if root.is_file():
            if root.suffix.lower() not in _SUFFIXES:
                raise RagError(f"'{root}' is not a source the index reads (its suffix is "
                               f"'{root.suffix or 'none'}')",
                               fix=f"pass files ending in {', '.join(sorted(_SUFFIXES))}, folders of them, "
                                   "or run folders (with run.json)")
            return [(root, "")]
        found: list[tuple[Path, str]] = []
        for dirpath, dirnames, filenames in os.walk(root):
            if "run.json" in filenames:
                found.append((Path(dirpath), "run"))
                dirnames[:] = []
                continue
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
            for f in sorted(filenames):
                src = Path(dirpath) / f
                # a symlinked file is indexed only when it points inside ``root`` (as its
                # target, once): links never pull in text from outside the folder given
                if src.suffix.lower() in _SUFFIXES and (not src.is_symlink() or src.resolve().is_relative_to(root)):
                    found.append((src, ""))
        return found

    def _read(self, src: Path, kind: str) -> bytes:
        """The bytes that identify a source's content (a run: its summary text)."""
        return read_run(src).text().encode() if kind == "run" else src.read_bytes()

    def _chunks(self, src: Path, kind: str, path: str, data: bytes,
                forced_kind: str | None) -> tuple[list[Chunk], str | None]:
        if kind == "run":
            text = data.decode()
            title = "/".join(src.parts[-3:])
            return [Chunk(text, path, 1, text.count("\n") + 1, "run", title)], None
        return chunk_file(src, path, forced_kind)

    def index(self, paths: list[Path], *, kind: str | None = None, rebuild: bool = False) -> IndexReport:
        """Index ``paths`` incrementally (see the module docstring). ``kind`` forces the
        kind of text sources (e.g. ``note``); code stays ``code`` and runs ``run``."""
        t0 = time.perf_counter()
        if kind is not None and kind not in KINDS:
            raise RagError(f"unknown kind '{kind}'", fix=f"use one of {', '.join(KINDS)}")
        if rebuild:
            self.store.delete()
        report = IndexReport()
        exists = self.store.exists()
        old_paths = self.store.column("path") if exists else []
        old_src = self.store.column("source_hash") if exists else []
        old_chash = self.store.column("content_hash") if exists else []
        rows_of: dict[str, list[int]] = defaultdict(list)
        for i, p in enumerate(old_paths):
            rows_of[p].append(i)

        to_delete: list[int] = []
        new_rows: list[Row] = []
        new_vecs: list[np.ndarray] = []
        pending: list[tuple[int, str]] = []  # (index in new_rows, text) to embed
        now = time.time()
        seen: set[str] = set()  # a source reached twice (a symlink, overlapping paths) is indexed once
        for root in paths:
            root = Path(root).resolve()
            root_disp = self.display(root)
            if not root.exists():
                gone = [p for p in rows_of if p == root_disp or p.startswith(root_disp + "/")]
                if not gone:
                    raise RagError(f"path '{root}' does not exist and nothing under it is indexed",
                                   fix="pass existing files or folders")
            else:
                gone = [p for p in rows_of
                        if (p == root_disp or p.startswith(root_disp + "/"))
                        and not (self.ws.root / p if not Path(p).is_absolute() else Path(p)).exists()]
            for p in gone:
                to_delete.extend(rows_of.pop(p))
                report.sources_removed += 1
            if not root.exists():
                continue
            for src, src_kind in self._walk(root):
                path = self.display(src)
                if path in seen:
                    continue
                seen.add(path)
                report.sources_seen += 1
                forced = kind if (src_kind != "run" and src.suffix.lower() not in CODE_SUFFIXES) else None
                try:
                    data = self._read(src, src_kind)
                except OSError as e:
                    report.warnings.append(f"{path}: skipped ({e})")
                    continue
                src_hash = _sha(data + f"\0{forced or ''}".encode())  # a new --kind re-indexes
                old = rows_of.pop(path, [])
                if old and all(old_src[i] == src_hash for i in old):
                    report.sources_unchanged += 1
                    continue
                chunks, warning = self._chunks(src, src_kind, path, data, forced)
                if warning:
                    report.warnings.append(warning)
                if not old and not chunks:  # an empty __init__.py (nothing to store), or a skipped source
                    report.sources_unchanged += warning is None
                    continue
                reusable = {old_chash[i]: i for i in old}
                to_delete.extend(old)
                report.sources_indexed += 1
                reuse_rows: list[tuple[int, int]] = []
                for ch in chunks:
                    h = _sha(ch.text.encode())
                    new_rows.append(Row(ch.text, ch.path, ch.start, ch.end, ch.kind, ch.title, h, src_hash, now))
                    if h in reusable:
                        reuse_rows.append((len(new_rows) - 1, reusable[h]))
                    else:
                        pending.append((len(new_rows) - 1, ch.text))
                new_vecs.extend([np.zeros(0, np.float32)] * len(chunks))
                if reuse_rows:
                    vecs = self.store.embeddings([old for _, old in reuse_rows])
                    for (ni, _), v in zip(reuse_rows, vecs):
                        new_vecs[ni] = v
                    report.chunks_reused += len(reuse_rows)
        if pending:
            batch = 256
            for s in range(0, len(pending), batch):
                part = pending[s:s + batch]
                vecs = self.embedder.embed([t for _, t in part])
                for (ni, _), v in zip(part, vecs):
                    new_vecs[ni] = v
            report.chunks_embedded = len(pending)
        if to_delete or new_rows:
            if to_delete:
                self.store.delete_rows(to_delete)
            if new_rows:
                self.store.append(new_rows, np.stack(new_vecs))
            self.store.commit(f"caramba rag index: +{len(new_rows)} -{len(to_delete)} rows")
        report.chunks_added = len(new_rows)
        report.total_chunks = len(self.store)
        report.seconds = time.perf_counter() - t0
        return report
