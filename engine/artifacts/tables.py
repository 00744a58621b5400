"""Final-metrics tables: ``summary.csv`` and a booktabs LaTeX ``summary.tex``.

One row per run, columns ``run, steps`` then the task's headline metrics (validation
first, e.g. ``val_loss, val_ppl`` or ``val_accuracy``), then every other final metric in
name order. Missing values are empty cells (CSV) or ``--`` (LaTeX).
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any


def columns(results: dict[str, dict[str, float]], headline: tuple[str, ...]) -> list[str]:
    """The metric columns, headline first."""
    present = sorted({k for m in results.values() for k in m if k != "steps"})
    first = [f"{split}_{h}" for split in ("val", "train") for h in headline if f"{split}_{h}" in present]
    return first + [c for c in present if c not in first]


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def summary_csv(results: dict[str, dict[str, float]], headline: tuple[str, ...]) -> str:
    cols = columns(results, headline)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["run", "steps", *cols])
    for run, m in results.items():
        w.writerow([run, _fmt(int(m["steps"])) if "steps" in m else "", *(_fmt(m.get(c)) for c in cols)])
    return out.getvalue()


def _tex_escape(text: str) -> str:
    text = text.replace("\\", "\x00")
    for a, b in (("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#"), ("$", r"\$"), ("{", r"\{"), ("}", r"\}")):
        text = text.replace(a, b)
    return text.replace("\x00", r"\textbackslash{}")


def summary_tex(results: dict[str, dict[str, float]], headline: tuple[str, ...], *, caption: str, label: str) -> str:
    """A booktabs table (needs ``\\usepackage{booktabs}``)."""
    cols = columns(results, headline)
    head = " & ".join(["Run", "Steps", *(_tex_escape(c) for c in cols)])
    lines = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{l" + "r" * (len(cols) + 1) + "}", r"\toprule",
             head + r" \\", r"\midrule"]
    for run, m in results.items():
        cells = [_tex_escape(run), str(int(m["steps"])) if "steps" in m else "--"]
        cells += [(f"{m[c]:.4f}" if isinstance(m.get(c), (int, float)) and math.isfinite(m[c]) else "--") for c in cols]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{_tex_escape(caption)}}}", rf"\label{{{label}}}",
              r"\end{table}"]
    return "\n".join(lines) + "\n"
