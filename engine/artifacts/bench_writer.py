"""Write a target's benchmark artifacts, verdicts and ``artifacts_index.json``.

Called by the runner after :func:`caramba.engine.artifacts.write_artifacts` (which wrote
``summary.*``, ``loss_curve.png`` and ``results.json``). Adds to ``artifacts/``:
``<type>.csv`` and ``<benchmark id>.tex`` per benchmark, ``latency_vs_context.png``
(when a latency benchmark ran), ``memory_scaling.png`` (memory), ``summary.png`` (any
benchmark), and extends ``results.json`` with ``verdicts`` and ``benchmarks``.

``artifacts_index.json``::

    {"run_dir": "...", "target": "...", "artifacts": [
        {"path": "artifacts/latency.csv", "kind": "table", "run": null, "benchmark": "lat"}, ...]}

lists every artifact of the run directory with its kind (``table | latex | plot |
results | index``) and what produced it (``run`` id for training outputs,
``benchmark`` id(s) for benchmark outputs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from caramba.engine.artifacts import bench_plots
from caramba.engine.artifacts.bench_tables import bench_tex, rows_csv
from caramba.engine.train.rundir import write_json, write_text


def write_bench_artifacts(run_dir: Path, target: Any, benches: dict[str, dict[str, Any]],
                          verdicts: dict[str, dict[str, Any]], prior: list[Path], recorder: Any) -> list[Path]:
    art = run_dir / "artifacts"
    art.mkdir(exist_ok=True)
    entries: list[dict[str, Any]] = []

    def add(path: Path, kind: str, benchmark: Any = None, run: Any = None) -> None:
        entries.append({"path": str(path.relative_to(run_dir)), "kind": kind, "run": run, "benchmark": benchmark})

    run_ids = [r.id for r in target.runs]
    for p in prior:
        kind = {".csv": "table", ".tex": "latex", ".png": "plot", ".json": "results"}.get(p.suffix, "file")
        add(p, kind, run=run_ids if p.name != "results.json" else None)
    new: list[tuple[Path, str, Any]] = []
    by_type: dict[str, list[str]] = {}
    for bid, b in benches.items():
        by_type.setdefault(b["type"], []).append(bid)
    for kind, ids in by_type.items():
        path = art / f"{kind}.csv"
        write_text(path, rows_csv(benches, kind))
        new.append((path, "table", ids))
    for bid, b in benches.items():
        path = art / f"{bid}.tex"
        write_text(path, bench_tex(bid, b, caption=f"{target.name}: {b['type']} benchmark '{bid}' ({b['device']})."))
        new.append((path, "latex", [bid]))
    plots = (("latency", "latency_vs_context.png", bench_plots.latency_vs_context),
             ("memory", "memory_scaling.png", bench_plots.memory_scaling))
    for kind, name, fn in plots:
        if kind in by_type:
            fn(benches, art / name)
            new.append((art / name, "plot", by_type[kind]))
    if any(k in by_type for k in ("perplexity", "latency", "memory")):
        bench_plots.summary(benches, art / "summary.png")
        new.append((art / "summary.png", "plot", list(benches)))
    for path, kind, ids in new:
        add(path, kind, benchmark=ids)
        recorder.event("artifact", None, path=str(path), kind=kind)
    res_path = run_dir / "results.json"
    results = json.loads(res_path.read_text()) if res_path.exists() else {"target": target.name}
    results["verdicts"] = verdicts
    results["benchmarks"] = benches
    write_json(res_path, results)
    index = art / "artifacts_index.json"
    add(index, "index")
    write_json(index, {"run_dir": str(run_dir), "target": target.name, "artifacts": entries})
    recorder.event("artifact", None, path=str(index), kind="index")
    return [p for p, _, _ in new] + [index]
