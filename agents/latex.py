"""LaTeX for ``paper_write``: the document skeleton, result tables built from the runs'
``results.json`` (so every number in a table is the measured one, never model text),
figures and ``references.bib`` (compiling: :mod:`caramba.agents.latex_compile`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SPECIAL = re.compile(r"([&%$#_{}])")


def escape(text: str) -> str:
    """Escape LaTeX specials in plain text (names of runs, metrics, paths)."""
    return _SPECIAL.sub(r"\\\1", text).replace("~", r"\textasciitilde{}").replace("^", r"\textasciicircum{}")


def fmt(value: Any) -> str:
    """How numbers appear in tables (and how tests look for them): 4 decimals, or an int."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return escape(str(value))
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e9 else f"{value:.4f}"


@dataclass
class RunData:
    """What a paper needs from one run directory."""

    key: str            # citation/label key, e.g. run:tiny-train-2026...
    rel: str            # workspace-relative run directory
    manifest: str
    target: str
    run_id: str
    results: dict[str, Any]
    figure: Path | None


def results_table(run: RunData) -> str:
    runs: dict[str, dict[str, Any]] = run.results.get("runs") or {}
    metrics = sorted({m for r in runs.values() for m in r})
    head = " & ".join(["run", *(escape(m) for m in metrics)])
    rows = [" & ".join([escape(rid), *(fmt(r[m]) if m in r else "--" for m in metrics)]) + r" \\"
            for rid, r in runs.items()]
    label = re.sub(r"[^A-Za-z0-9:-]", "-", run.key)
    return "\n".join([r"\begin{table}[h]", r"\centering", r"\begin{tabular}{l" + "r" * len(metrics) + "}",
                      r"\toprule", head + r" \\", r"\midrule", *rows, r"\bottomrule", r"\end{tabular}",
                      rf"\caption{{Final metrics of {escape(run.manifest)}/{escape(run.target)} "
                      rf"(run {escape(run.run_id)}, primary metric {escape(str(run.results.get('primary')))}).}}",
                      rf"\label{{tab:{label}}}", r"\end{table}"])


def figure(run: RunData) -> str:
    if run.figure is None:
        return ""
    label = re.sub(r"[^A-Za-z0-9:-]", "-", run.key)
    return "\n".join([r"\begin{figure}[h]", r"\centering", rf"\includegraphics[width=0.8\linewidth]{{{run.figure.name}}}",
                      rf"\caption{{Training curve of {escape(run.manifest)}/{escape(run.target)} (run {escape(run.run_id)}).}}",
                      rf"\label{{fig:{label}}}", r"\end{figure}"])


def document(title: str, sections: dict[str, str], runs: list[RunData]) -> str:
    results = "\n\n".join([sections["results"], *(results_table(r) + "\n" + figure(r) for r in runs)])
    return "\n".join([
        r"\documentclass{article}", r"\usepackage{booktabs}", r"\usepackage{graphicx}", r"\usepackage[hidelinks]{hyperref}",
        rf"\title{{{escape(title)}}}", r"\author{caramba research agents}", r"\date{\today}", r"\begin{document}",
        r"\maketitle", r"\begin{abstract}", sections["abstract"], r"\end{abstract}",
        r"\section{Method}", sections["method"], r"\section{Experimental setup}", sections["setup"],
        r"\section{Results}", results, r"\section{Limitations}", sections["limitations"],
        r"\bibliographystyle{plain}", r"\bibliography{references}", r"\end{document}", ""])


def bibliography(runs: list[RunData]) -> str:
    entries = ["@misc{caramba,\n  title = {caramba: manifest-driven neural-architecture research},\n"
               "  note = {Software used to define, train and measure every model in this paper}\n}"]
    for r in runs:
        entries.append(f"@misc{{{r.key},\n  title = {{caramba run {r.manifest}/{r.target}/{r.run_id}}},\n"
                       f"  note = {{Run directory {r.rel}: resolved manifest, metrics and artifacts}}\n}}")
    return "\n\n".join(entries) + "\n"
