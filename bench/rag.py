"""Benchmark caramba's retrieval index: indexing speed, size, query latency, recall@10.

    python -m caramba.bench.rag                 # this repository + the standard library
    python -m caramba.bench.rag --no-stdlib     # this repository only (faster)
    python -m caramba.bench.rag --embedder openai/text-embedding-3-small   # any LiteLLM model

What it does: builds a fresh DeepLake index in a temporary folder over the caramba
source tree (``.venv``, hidden and build folders skipped) and the Python standard
library (``sysconfig`` stdlib path, minus ``test/``, ``idlelib``, ``lib2to3``, ``tkinter``,
``turtledemo``, ``ensurepip`` and ``site-packages``), then runs a small labelled query set:
each query is a plain-English description whose right answer is one known function or
class (path suffix + qualified name). Reports, per search mode (hybrid / vector /
keyword): recall@10 (the right chunk among the first 10), MRR, and query latency p50/p95
over ``--repeat`` rounds after one warm-up round. Indexing is timed once, cold, and then
re-run to show the incremental no-op cost.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sysconfig
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STDLIB_SKIP = ("test", "idlelib", "lib2to3", "tkinter", "turtledemo", "ensurepip", "site-packages")

#: (query, path suffix, qualified name of the right chunk)
QUERIES: list[tuple[str, str, str]] = [
    ("fuse ranked lists by reciprocal rank", "memory/rag_search.py", "search"),
    ("signed feature hashing vector of words and character n-grams", "llm/embedders.py", "LocalHashEmbedder._vector"),
    ("start the embedded falkordb server or reuse a running one", "codegraph/server.py", "ensure_falkordb"),
    ("refuse a path outside the workspace root", "workspace.py", "Workspace.resolve"),
    ("write caramba.yml atomically with a temp file and rename", "workspace.py", "Workspace.save_config"),
    ("parse a phrase like last week into a time window", "memory/timefilter.py", "parse_when"),
    ("split python source into function and class chunks with ast", "memory/chunking.py", "chunk_python"),
    ("summarise a finished run directory", "memory/runs.py", "read_run"),
    ("api key missing for the llm provider", "llm/settings.py", "resolve_model"),
    ("rerank passages by cosine similarity of embeddings", "llm/graphiti_clients.py", "EmbeddingReranker.rank"),
    ("find the full path of an executable on PATH", "shutil.py", "which"),
    ("wrap a paragraph of text to a maximum line width", "textwrap.py", "wrap"),
    ("close matches of a word from a list of possibilities", "difflib.py", "get_close_matches"),
    ("median of numeric data", "statistics.py", "median"),
    ("create a temporary directory that is removed on exit", "tempfile.py", "TemporaryDirectory"),
    ("walk a directory tree top down yielding dirpath dirnames filenames", "os.py", "walk"),
    ("split a URL into scheme netloc path query fragment", "urllib/parse.py", "urlsplit"),
    ("push an item on the heap then pop the smallest", "heapq.py", "heappushpop"),
    ("encode bytes using base64", "base64.py", "b64encode"),
    ("copy a file and its permission bits", "shutil.py", "copy"),
    ("shallow copy of an arbitrary python object", "copy.py", "copy"),
    ("match a filename against a shell wildcard pattern", "fnmatch.py", "fnmatch"),
    ("dedent common leading whitespace from every line", "textwrap.py", "dedent"),
    ("insert an item into a sorted list keeping it sorted", "bisect.py", "insort_right"),
]


def _sources(stdlib: bool) -> list[Path]:
    paths = [REPO / d for d in sorted(os.listdir(REPO))
             if (REPO / d).is_dir() and not d.startswith((".", "_")) and d not in ("build", "dist")
             and not d.endswith(".egg-info")]
    paths += [p for p in REPO.glob("*.py")] + [p for p in REPO.glob("*.md")]
    if stdlib:
        lib = Path(sysconfig.get_paths()["stdlib"])
        paths += [p for p in sorted(lib.iterdir())
                  if p.name not in STDLIB_SKIP and not p.name.startswith((".", "_"))
                  and (p.is_dir() or p.suffix == ".py")]
    return paths


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-stdlib", action="store_true", help="index this repository only")
    ap.add_argument("--embedder", default="local", help="memory.embedder value (default: local)")
    ap.add_argument("--repeat", type=int, default=3, help="timed query rounds (after 1 warm-up)")
    args = ap.parse_args(argv)

    from caramba.llm import build_embedder
    from caramba.memory.rag_index import RagIndex
    from caramba.memory.rag_search import search
    from caramba.memory.rag_store import RagStore
    from caramba.workspace import Workspace

    tmp = Path(tempfile.mkdtemp(prefix="caramba-rag-bench-"))
    try:
        emb = build_embedder(args.embedder)
        ws = Workspace(REPO)
        store = RagStore(str(tmp / "rag"), emb.name)
        idx = RagIndex(ws, emb, store=store)
        srcs = _sources(not args.no_stdlib)
        cpu0 = time.process_time()
        rep = idx.index(srcs)
        cpu = time.process_time() - cpu0
        rep2 = idx.index(srcs)
        size = _du(tmp / "rag")
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus "
              f"(load average {os.getloadavg()[0]:.1f}), "
              f"python {platform.python_version()}, embedder {emb.name}")
        print(f"indexed {rep.sources_indexed} sources -> {rep.total_chunks} chunks in {rep.seconds:.1f}s "
              f"= {rep.total_chunks / rep.seconds:.0f} chunks/s wall, {rep.total_chunks / cpu:.0f} chunks/s "
              f"per CPU-second of this process; index size {size / 2**20:.1f} MiB; "
              f"re-index unchanged: {rep2.seconds:.2f}s, {rep2.chunks_embedded} re-embedded")
        for mode in ("hybrid", "vector", "keyword"):
            found, rr, lat = 0, 0.0, []
            for rnd in range(args.repeat + 1):
                for q, suffix, name in QUERIES:
                    t0 = time.perf_counter()
                    hits = search(idx, q, k=10, mode=mode)  # type: ignore[arg-type]
                    dt = time.perf_counter() - t0
                    if rnd == 0:
                        ranks = [i for i, h in enumerate(hits) if h.path.endswith(suffix) and h.title == name]
                        if ranks:
                            found += 1
                            rr += 1.0 / (ranks[0] + 1)
                    else:
                        lat.append(dt * 1000)
            lat.sort()
            p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))]
            print(f"{mode:8s} recall@10 {found}/{len(QUERIES)} = {found / len(QUERIES):.2f}  "
                  f"MRR {rr / len(QUERIES):.2f}  query p50 {statistics.median(lat):.1f} ms  p95 {p95:.1f} ms")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
