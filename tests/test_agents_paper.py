"""paper_write turns a real run's artifacts into LaTeX whose tables hold the run's actual
numbers (plus references.bib and the loss curve); paper_review scores that paper and its
follow-up experiments are checked against their preset through MCP."""

from __future__ import annotations

import json
from pathlib import Path

from caramba.agents.latex import fmt
from caramba.agents.models import ModelOverride
from caramba.agents.session import ProcessSpec, run_process
from caramba.engine.manifest import load_manifest
from caramba.engine.runner import run_target
from caramba.tests.support.agents import events
from caramba.tests.support.mcp_manifests import tiny
from caramba.tests.support.scripted_llm import ScriptedLLM, scripted_llm  # noqa: F401
from caramba.workspace import Workspace

SECTIONS = {"abstract": "We train a tiny LM \\cite{caramba}.", "method": "A two-layer toy model.",
            "setup": "Random tokens, CPU, three steps.", "results": "Table~\\ref{tab:x} lists the losses.",
            "limitations": "One seed; random data."}
REVIEW = {"score": 4, "summary": "Honest but tiny.", "strengths": ["exact numbers"], "weaknesses": ["one seed"],
          "follow_ups": [{"title": "More steps", "rationale": "curve not flat", "base": "mlp_classifier",
                          "overrides": ["targets[0].runs[0].steps=900"]},
                         {"title": "Typo", "base": "mlp_classifier", "overrides": ["targets[0].runz=1"]}]}


def test_paper_write_then_review(tmp_path: Path, scripted_llm: ScriptedLLM) -> None:
    ws = Workspace(tmp_path)
    (tmp_path / "tiny.yml").write_text(tiny(steps=3))
    done = run_target(load_manifest(tmp_path / "tiny.yml"), workspace=ws, console=False)
    assert done.state == "completed"
    rel = str(done.run_dir.relative_to(tmp_path))
    measured = json.loads((done.run_dir / "results.json").read_text())["runs"]["a"]["train_loss"]

    llm = scripted_llm
    llm.add_turn("```json\n" + json.dumps(SECTIONS) + "\n```")
    override = ModelOverride("openai/scripted", llm.base_url)
    res = run_process(ProcessSpec("paper_write", "paper", {}, {"type": "paper_write", "title": "Tiny LM_study",
                                                               "runs": [rel], "compile": False}),
                      workspace=ws, override=override)
    tex = (res.run_dir / "paper.tex").read_text()
    assert fmt(measured) in tex                                   # the run's actual number, from results.json
    assert r"\section{Limitations}" in tex and "One seed; random data." in tex and "Tiny LM\\_study" in tex
    assert "includegraphics" in tex and list(res.run_dir.glob("*_loss_curve.png"))
    bib = (res.run_dir / "references.bib").read_text()
    assert "@misc{caramba," in bib and done.run_id in bib
    assert fmt(measured) in llm.chat_requests()[0].prompt         # the writer was given the numbers
    compile_ev = next(e for e in events(res.run_dir) if e["event"] == "compile")
    assert compile_ev["ok"] is False and "compile: false" in compile_ev["log"]

    llm.add_turn("```json\n" + json.dumps(REVIEW) + "\n```")
    paper = str((res.run_dir / "paper.tex").relative_to(tmp_path))
    rev = run_process(ProcessSpec("paper_review", "review", {}, {"type": "paper_review", "paper": paper,
                                                                 "strictness": "strict"}),
                      workspace=ws, override=override)
    assert "top venue" in llm.chat_requests()[1].prompt and fmt(measured) in llm.chat_requests()[1].prompt
    review = json.loads((rev.run_dir / "review.json").read_text())
    assert review["score"] == 4 and [f["valid"] for f in review["follow_ups"]] == [True, False]
    assert "runz" in review["follow_ups"][1]["issues"]
    assert "INVALID" in (rev.run_dir / "review.md").read_text()
