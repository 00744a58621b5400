"""Code-graph benchmark: index the running interpreter's standard library into FalkorDB.

    python bench/codegraph.py            # full sync from empty, no-change re-sync, canned queries
    python bench/codegraph.py --json     # the same numbers as one JSON object

Uses a fresh embedded FalkorDB in a temporary workspace (stopped at the end). Baseline:
the targets of issue 6 on 2 CPU cores — full sync < 60 s, no-change re-sync < 5 s,
canned query p50 < 10 ms. ``site-packages`` is skipped (it is not the stdlib).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sysconfig
import tempfile
import time
from pathlib import Path

from caramba.codegraph.queries import CodeGraph
from caramba.codegraph.server import connect, ensure_falkordb, stop_falkordb
from caramba.codegraph.sync import sync_repository
from caramba.workspace import Workspace

QUERY_REPEATS = 50  # per canned question, after one warm-up call


def _percentiles(xs: list[float]) -> tuple[float, float]:
    xs = sorted(xs)
    return statistics.median(xs), xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]


def _cpu(db) -> tuple[float, float]:  # noqa: ANN001 - falkordb.FalkorDB
    """(this process, the FalkorDB server) CPU seconds so far: on a loaded machine wall time
    measures the neighbours, CPU time measures us (client and server run one after the other,
    so on an idle machine wall ≈ client CPU + server CPU)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # the parse worker processes, once joined
    info = db.connection.info("cpu")
    return (me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
            float(info["used_cpu_user"]) + float(info["used_cpu_sys"]))


def _timed_sync(lib: Path, db) -> tuple[object, float]:  # noqa: ANN001
    c0, s0 = _cpu(db)
    rep = sync_repository(lib, db=db, graph="stdlib")
    c1, s1 = _cpu(db)
    return rep, (c1 - c0) + (s1 - s0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    lib = Path(sysconfig.get_paths()["stdlib"])
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(tmp)
        ensure_falkordb(ws)
        try:
            db = connect(ws)
            full, full_cpu = _timed_sync(lib, db)
            again, again_cpu = _timed_sync(lib, db)
            cg = CodeGraph.open(db, "stdlib")
            summary = cg.summary()
            questions = {
                "find": lambda: cg.find("join"),
                "callers": lambda: cg.callers("json.dumps"),
                "callees": lambda: cg.callees("json.dumps"),
                "subclasses": lambda: cg.subclasses("_collections_abc.Mapping", transitive=True),
                "imports": lambda: cg.imports("json"),
                "layer_usage": lambda: cg.layer_usage("AttentionLayer"),
                "summary": cg.summary,
            }
            lat: dict[str, dict[str, float]] = {}
            for name, fn in questions.items():
                fn()
                times, cpu = [], []
                for _ in range(QUERY_REPEATS):
                    c0, s0 = _cpu(db)
                    t = time.perf_counter()
                    fn()
                    times.append((time.perf_counter() - t) * 1e3)
                    c1, s1 = _cpu(db)
                    cpu.append(((c1 - c0) + (s1 - s0)) * 1e3)
                p50, p95 = _percentiles(times)
                lat[name] = {"p50_ms": round(p50, 2), "p95_ms": round(p95, 2),
                             "cpu_p50_ms": round(statistics.median(cpu), 2)}
        finally:
            stop_falkordb(ws)
    result = {
        "python": platform.python_version(), "stdlib": str(lib), "files": full.files,
        "full_sync_s": round(full.seconds, 2), "full_sync_cpu_s": round(full_cpu, 2),
        "files_per_s": round(full.files / full.seconds, 1), "parse_errors": len(full.errors),
        "resync_no_change_s": round(again.seconds, 2), "resync_no_change_cpu_s": round(again_cpu, 2),
        "load_avg_1m": round(__import__("os").getloadavg()[0], 1),
        "nodes": sum(v for k, v in summary["nodes"].items() if k != "Symbol"),
        "edges": sum(summary["edges"].values()), "node_labels": summary["nodes"], "edge_types": summary["edges"],
        "queries": lat,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"stdlib {lib}: {full.files} files ({len(full.errors)} do not parse)")
    print(f"load average (1 min) {result['load_avg_1m']} on {__import__('os').cpu_count()} cores")
    print(f"full sync      {full.seconds:7.2f} s wall, {full_cpu:6.2f} s CPU ({result['files_per_s']} files/s)   target < 60 s")
    print(f"no-change sync {again.seconds:7.2f} s wall, {again_cpu:6.2f} s CPU                  target < 5 s")
    print(f"graph          {result['nodes']} nodes, {result['edges']} edges")
    for name, v in lat.items():
        print(f"  {name:12s} p50 {v['p50_ms']:7.2f} ms   p95 {v['p95_ms']:7.2f} ms   "
              f"CPU p50 {v['cpu_p50_ms']:6.2f} ms   target p50 < 10 ms")


if __name__ == "__main__":
    main()
