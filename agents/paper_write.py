"""The ``paper_write`` process: a LaTeX paper from named runs' artifacts.

The writer persona drafts the prose (abstract, method, setup, results discussion,
limitations) from the runs' resolved manifests and ``results.json``; the process builds
the tables from ``results.json`` itself (every number is the measured one), copies the
loss curves, writes ``paper.tex`` + ``references.bib`` into the run directory and
compiles ``paper.pdf`` when TeX (``pdflatex`` + ``bibtex``) is installed — otherwise the
transcript's ``compile`` event says ``skipped`` and why. A LaTeX error fails the process
with the first error and its ``paper.tex`` line (the .tex, .bib and ``paper.log`` stay for
fixing; no partial PDF is left).
"""

from __future__ import annotations

import json
import shutil
from typing import Any

from pydantic import BaseModel, ConfigDict

from caramba.agents.latex import RunData, bibliography, document, fmt
from caramba.agents.latex_compile import LatexCompileError, compile_pdf
from caramba.agents.replies import ask_structured
from caramba.agents.session import ProcessContext
from caramba.agents.transcript import write_text
from caramba.engine.errors import CarambaError


class Sections(BaseModel):
    model_config = ConfigDict(extra="ignore")

    abstract: str
    method: str
    setup: str
    results: str
    limitations: str


def load_runs(ctx: ProcessContext) -> list[RunData]:
    """The named run directories, checked: inside the workspace, finished (results.json)."""
    out: list[RunData] = []
    for i, name in enumerate(ctx.cfg.runs):
        d = ctx.workspace.resolve(name)
        if not (d / "results.json").is_file() or not (d / "run.json").is_file():
            raise CarambaError(f"{ctx.spec.where}.runs[{i}]: '{name}' is not a finished run directory "
                               "(no run.json/results.json)",
                               fix="name run directories like runs/<manifest>/<target>/<run id> of completed runs")
        info = json.loads((d / "run.json").read_text())
        png = d / "artifacts" / "loss_curve.png"
        out.append(RunData(key=f"run:{info['manifest']}-{info['target']}-{info['run_id']}",
                           rel=str(d.relative_to(ctx.workspace.root)), manifest=info["manifest"],
                           target=info["target"], run_id=info["run_id"],
                           results=json.loads((d / "results.json").read_text()),
                           figure=png if png.is_file() else None))
    return out


def _brief(ctx: ProcessContext, runs: list[RunData]) -> str:
    parts = [f"Write the paper '{ctx.cfg.title}'. Answer with one ```json block {{abstract, method, setup, "
             "results, limitations}}: LaTeX body text for each (no \\section commands, no preamble). The results "
             "tables and figures are inserted after your 'results' text; refer to them as Table~\\ref{tab:KEY} "
             "and Figure~\\ref{fig:KEY}. Cite only these keys: caramba, " + ", ".join(r.key for r in runs) + "."]
    for r in runs:
        manifest = (ctx.workspace.root / r.rel / "manifest.yml")
        text = manifest.read_text()[:6000] if manifest.is_file() else "(no manifest.yml)"
        numbers = {rid: {k: fmt(v) for k, v in m.items()} for rid, m in (r.results.get("runs") or {}).items()}
        parts.append(f"Run {r.key} (KEY {r.key.replace('_', '-')}; directory {r.rel}):\nresults: {json.dumps(numbers)}\n"
                     f"primary metric: {r.results.get('primary')}\nresolved manifest:\n```yaml\n{text}\n```")
    return "\n\n".join(parts)


async def run(ctx: ProcessContext) -> dict[str, Any]:
    runs = load_runs(ctx)
    sections = await ask_structured(ctx, "writer", _brief(ctx, runs), Sections, "paper sections")
    out = ctx.run.dir
    for r in runs:
        if r.figure is not None:
            dst = out / f"{r.key.replace(':', '_')}_loss_curve.png"
            shutil.copyfile(r.figure, dst)
            r.figure = dst
    write_text(out / "paper.tex", document(ctx.cfg.title, sections.model_dump(), runs))
    write_text(out / "references.bib", bibliography(runs))
    compiled: dict[str, Any] = {"engine": None, "ok": False, "log": "compile: false in the process config"}
    if ctx.cfg.compile:
        try:
            compiled = compile_pdf(out)
        except LatexCompileError as e:
            ctx.run.emit("compile", None, engine="pdflatex", ok=False, skipped=False, error=e.message)
            raise
    ctx.run.emit("compile", None, engine=compiled["engine"], ok=compiled["ok"],
                 skipped=compiled["engine"] is None, log=compiled["log"])
    pdf = str((out / "paper.pdf").relative_to(ctx.workspace.root)) if compiled["ok"] else None
    return {"paper": str((out / "paper.tex").relative_to(ctx.workspace.root)),
            "pdf": pdf or f"not compiled ({compiled['log'].splitlines()[0]})", "runs": len(runs)}
