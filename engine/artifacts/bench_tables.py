"""Benchmark tables: one CSV per benchmark type and booktabs LaTeX tables that put the
models (teacher vs student) side by side with the best value in bold.

* ``<type>.csv`` — every row of every benchmark of that type (columns: ``benchmark``,
  ``model``, ``repeat``, ``seed``, the configuration, the measurements).
* ``<type>.tex`` — one line per configuration × metric, one column per model; with more
  than one repeat each cell is ``mean ± h`` where ``h`` is the 95% confidence half-width
  ``t_{0.975, n-1} · s / sqrt(n)``.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from typing import Any

from caramba.engine.artifacts.tables import _tex_escape

#: per benchmark type: configuration columns, then (metric, label, higher_is_better)
TABLE_METRICS: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str, bool], ...]]] = {
    "perplexity": ((), (("ppl", "perplexity", False), ("nll", "NLL (nats/token)", False))),
    "latency": (("prompt_len", "gen_len", "batch", "cache_kind"),
                (("prefill_tok_s", "prefill tok/s", True), ("decode_tok_s", "decode tok/s", True))),
    "memory": (("cache_kind", "seq_len", "batch"), (("kv_bytes", "KV cache (MiB)", False),)),
    "context": (("context_len", "chunk", "cache_kind"),
                (("prefill_tok_s", "prefill tok/s", True), ("decode_tok_s", "decode tok/s", True))),
    "behavior": ((), (("accuracy", "accuracy", True),)),
}


def rows_csv(benches: dict[str, dict[str, Any]], kind: str) -> str:
    rows = [{"benchmark": bid, **r} for bid, b in benches.items() if b["type"] == kind for r in b["rows"]]
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow(["" if r.get(c) is None else (f"{r[c]:.6g}" if isinstance(r[c], float) else r[c]) for c in cols])
    return out.getvalue()


def t_975(n: int) -> float:
    from scipy.stats import t
    return float(t.ppf(0.975, n - 1))


def mean_ci(xs: list[float]) -> tuple[float, float | None]:
    """Mean and 95% CI half-width (None with one sample)."""
    m = statistics.fmean(xs)
    if len(xs) < 2:
        return m, None
    return m, t_975(len(xs)) * statistics.stdev(xs) / math.sqrt(len(xs))


def aggregate(bench: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per (configuration, metric): ``{config, metric, label, higher, cells: {model: (mean, ci)}}``."""
    keys, metrics = TABLE_METRICS[bench["type"]]
    out: dict[tuple, dict[str, Any]] = {}
    for metric, label, higher in metrics:
        for r in bench["rows"]:
            if r.get(metric) is None:
                continue
            config = tuple((k, r.get(k)) for k in keys)
            entry = out.setdefault((config, metric), {"config": dict(config), "metric": metric, "label": label,
                                                      "higher": higher, "values": {}})
            value = r[metric] / 2**20 if metric == "kv_bytes" else float(r[metric])
            entry["values"].setdefault(r["model"], []).append(value)
    for e in out.values():
        e["cells"] = {m: mean_ci(v) for m, v in e["values"].items()}
    return list(out.values())


def _cell(mean: float, ci: float | None, bold: bool) -> str:
    digits = 4 if abs(mean) < 100 else 1
    text = f"{mean:.{digits}f}" + (f" $\\pm$ {ci:.{digits}f}" if ci is not None else "")
    return rf"\textbf{{{text}}}" if bold else text


def bench_tex(bench_id: str, bench: dict[str, Any], *, caption: str) -> str:
    """A booktabs table of one benchmark (needs ``\\usepackage{booktabs}``)."""
    models = bench["models"]
    entries = aggregate(bench)
    keys = TABLE_METRICS[bench["type"]][0]
    head = ["metric", *keys, *models]
    lines = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{l" + "l" * len(keys) + "r" * len(models) + "}",
             r"\toprule", " & ".join(_tex_escape(h) for h in head) + r" \\", r"\midrule"]
    for e in entries:
        cells = e["cells"]
        present = [m for m in models if m in cells]
        best = (max if e["higher"] else min)(present, key=lambda m: cells[m][0]) if len(present) > 1 else None
        row = [_tex_escape(e["label"]), *(_tex_escape(str(e["config"][k])) for k in keys)]
        row += [_cell(*cells[m], m == best) if m in cells else "--" for m in models]
        lines.append(" & ".join(row) + r" \\")
    note = f" Mean $\\pm$ 95\\% CI over {bench['repeats']} repeats." if bench["repeats"] > 1 else ""
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{_tex_escape(caption)}{note} Best in bold.}}",
              rf"\label{{tab:{_tex_escape(bench_id)}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"
