"""paper_write compiles its paper with real TeX Live (pdflatex + bibtex): the PDF's text
holds the run's measured number; a LaTeX error in the paper fails the process, in Python
and through `caramba run`, naming paper.tex and the line, with no partial PDF left.

Skips only when no TeX engine is installed (CI installs TeX Live: see .ci/run)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from caramba.agents.latex import fmt
from caramba.agents.latex_compile import LatexCompileError, compile_pdf, first_error
from caramba.agents.models import ModelOverride
from caramba.agents.session import ProcessSpec, run_process
from caramba.engine.manifest import load_manifest
from caramba.engine.runner import run_target
from caramba.tests.support.agents import caramba, events
from caramba.tests.support.mcp_manifests import tiny
from caramba.tests.support.scripted_llm import ScriptedLLM, scripted_llm  # noqa: F401
from caramba.workspace import Workspace

pytestmark = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no TeX engine (pdflatex) installed")

SECTIONS = {"abstract": "We train a tiny LM with caramba \\cite{caramba}.", "method": "A two-layer toy model.",
            "setup": "Random tokens on the CPU.", "results": "The table lists the final losses.",
            "limitations": "One seed; random data."}


def _pdf_text(pdf: Path) -> str:
    if shutil.which("pdftotext"):
        return subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    raw = pdf.read_bytes()          # no poppler: at least a real, non-trivial PDF
    assert raw.startswith(b"%PDF") and len(raw) > 5000
    return ""


def test_paper_write_compiles_a_pdf_with_the_runs_numbers(tmp_path: Path, scripted_llm: ScriptedLLM) -> None:
    ws = Workspace(tmp_path)
    (tmp_path / "tiny.yml").write_text(tiny(steps=3))
    done = run_target(load_manifest(tmp_path / "tiny.yml"), workspace=ws, console=False)
    rel = str(done.run_dir.relative_to(tmp_path))
    measured = fmt(json.loads((done.run_dir / "results.json").read_text())["runs"]["a"]["train_loss"])

    scripted_llm.add_turn("```json\n" + json.dumps(SECTIONS) + "\n```")
    res = run_process(ProcessSpec("paper_write", "paper", {}, {"type": "paper_write", "title": "Tiny study",
                                                               "runs": [rel]}),
                      workspace=ws, override=ModelOverride("openai/scripted", scripted_llm.base_url))
    pdf = res.run_dir / "paper.pdf"
    assert pdf.is_file() and res.outputs["pdf"] == str(pdf.relative_to(tmp_path))
    text = _pdf_text(pdf)
    if text:
        assert measured in text and "Tiny study" in text and "One seed; random data." in text
        assert "[1]" in text or "[2]" in text                       # bibtex resolved the citation
    log = (res.run_dir / "paper.log").read_text()
    assert "Output written on paper.pdf" in log and "Citation `caramba' undefined" not in log.split("Output written")[-1]
    compile_ev = next(e for e in events(res.run_dir) if e["event"] == "compile")
    assert compile_ev["ok"] is True and compile_ev["engine"] == "pdflatex"
    assert not list(res.run_dir.glob(".latex-build-*"))

    # the same paper through `caramba run`, with a LaTeX error in the writer's text
    broken = {**SECTIONS, "method": "A two-layer toy model.\n\\notamacro{x} follows."}
    scripted_llm.add_turn("```json\n" + json.dumps(broken) + "\n```")
    (tmp_path / "paper.yml").write_text(
        "version: 2\nname: paper\ntargets:\n  - type: process\n    name: write\n    process:\n"
        f"      type: paper_write\n      runs: [{rel}]\n      model: openai/scripted\n"
        f"      api_base: {scripted_llm.base_url}\n")
    r = caramba(tmp_path, "run", "paper.yml")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "Undefined control sequence" in r.stderr
    run_dir = next((tmp_path / "runs" / "paper" / "write").iterdir())
    tex_lines = (run_dir / "paper.tex").read_text().splitlines()
    bad_line = next(i for i, line in enumerate(tex_lines, 1) if "\\notamacro" in line)
    assert f"paper.tex:{bad_line}:" in " ".join(r.stderr.split()) and "notamacro" in r.stderr
    assert not (run_dir / "paper.pdf").exists() and (run_dir / "paper.log").is_file()
    assert json.loads((run_dir / "run.json").read_text())["state"] == "failed"
    ev = next(e for e in events(run_dir) if e["event"] == "compile")
    assert ev["ok"] is False and f":{bad_line}:" in ev["error"]


def test_compile_errors_name_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "paper.tex").write_text("\\documentclass{article}\n\\usepackage{nosuchpackage}\n"
                                        "\\begin{document}\nHi\n\\end{document}\n")
    with pytest.raises(LatexCompileError) as e:
        compile_pdf(tmp_path)
    assert re.search(r"paper\.tex:[23]: LaTeX Error: File `nosuchpackage\.sty' not found", e.value.message)
    assert not (tmp_path / "paper.pdf").exists()
    (tmp_path / "paper.tex").write_text("\\documentclass{article}\n\\begin{document}\n$x^2\n\n\\end{document}\n")
    with pytest.raises(LatexCompileError, match=r"paper\.tex:\d+: .*Missing \$ inserted"):
        compile_pdf(tmp_path)
    assert first_error("nothing wrong here\n") is None
    assert first_error("! Undefined control sequence.\nl.7 \\foo\n") == (None, 7, "Undefined control sequence. (at: \\foo)")
