"""Benchmark figures, sized for a paper column (6.5 × 4 in, 150 dpi, labelled axes with
units, legends):

* ``latency_vs_context.png`` — decode (and prefill) tokens/s against prompt length, one
  line per model, error bars = p20..p80 over timed runs;
* ``memory_scaling.png`` — KV-cache MiB against cached tokens, one line per model ×
  cache format (log-log);
* ``summary.png`` — one bar panel per headline: perplexity, decode tokens/s at the
  longest prompt, KV MiB at the longest sequence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "legend.fontsize": 8})
    return plt


def _save(fig: Any, out: Path) -> None:
    fig.tight_layout()
    tmp = out.with_name(f".{out.stem}.tmp.png")
    fig.savefig(tmp, dpi=150)
    _plt().close(fig)
    tmp.replace(out)


def _rows(benches: dict[str, dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for b in benches.values() if b["type"] == kind for r in b["rows"]]


def latency_vs_context(benches: dict[str, dict[str, Any]], out: Path) -> None:
    plt = _plt()
    rows = _rows(benches, "latency")
    fig, axes = plt.subplots(1, 2, figsize=(6.5, 3.2))
    gen, batch = rows[0]["gen_len"], rows[0]["batch"]
    for ax, metric, title in ((axes[0], "prefill_tok_s", "prefill"), (axes[1], "decode_tok_s", "decode")):
        for model in dict.fromkeys(r["model"] for r in rows):
            pts = sorted((r["prompt_len"], r[metric], r[f"{metric}_p20"], r[f"{metric}_p80"]) for r in rows
                         if r["model"] == model and r["gen_len"] == gen and r["batch"] == batch and r["repeat"] == 0)
            xs, ys, lo, hi = zip(*pts)
            ax.errorbar(xs, ys, yerr=[[y - a for y, a in zip(ys, lo)], [b - y for y, b in zip(ys, hi)]],
                        marker="o", capsize=3, label=model)
        ax.set_xlabel("prompt length (tokens)")
        ax.set_ylabel(f"{title} throughput (tokens/s)")
        ax.set_title(f"{title} (batch {batch}, {gen} new tokens)")
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, out)


def memory_scaling(benches: dict[str, dict[str, Any]], out: Path) -> None:
    plt = _plt()
    rows = [r for r in _rows(benches, "memory") if r.get("kv_bytes") is not None and r["repeat"] == 0]
    batch = rows[0]["batch"]
    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    for model in dict.fromkeys(r["model"] for r in rows):
        for kind in dict.fromkeys(r["cache_kind"] for r in rows):
            pts = sorted((r["seq_len"], r["kv_bytes"] / 2**20) for r in rows
                         if r["model"] == model and r["cache_kind"] == kind and r["batch"] == batch)
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, marker="o", label=f"{model} {kind}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("cached tokens (sequence length)")
    ax.set_ylabel("KV cache (MiB)")
    ax.set_title(f"KV-cache memory, batch {batch}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(ncol=2)
    _save(fig, out)


def summary(benches: dict[str, dict[str, Any]], out: Path) -> None:
    from caramba.engine.artifacts.bench_tables import mean_ci

    plt = _plt()
    panels = []
    ppl = _rows(benches, "perplexity")
    if ppl:
        panels.append(("perplexity (lower is better)", ppl, "ppl", 1.0))
    lat = _rows(benches, "latency")
    if lat:
        P = max(r["prompt_len"] for r in lat)
        panels.append((f"decode tokens/s, prompt {P}", [r for r in lat if r["prompt_len"] == P], "decode_tok_s", 1.0))
    mem = [r for r in _rows(benches, "memory") if r.get("kv_bytes") is not None]
    if mem:
        S = max(r["seq_len"] for r in mem)
        panels.append((f"KV MiB at {S} tokens", [dict(r, model=f"{r['model']}\n{r['cache_kind']}") for r in mem
                                                 if r["seq_len"] == S], "kv_bytes", 1 / 2**20))
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(3.3 * max(len(panels), 1), 3.4), squeeze=False)
    for ax, (title, rows, metric, scale) in zip(axes[0], panels):
        models = list(dict.fromkeys(r["model"] for r in rows))
        stats = [mean_ci([r[metric] * scale for r in rows if r["model"] == m]) for m in models]
        ax.bar(range(len(models)), [s[0] for s in stats], yerr=[s[1] or 0 for s in stats], capsize=4,
               color=[f"C{i}" for i in range(len(models))])
        ax.set_xticks(range(len(models)), models, fontsize=8)
        ax.set_title(title)
        ax.grid(alpha=0.3, axis="y")
    _save(fig, out)
