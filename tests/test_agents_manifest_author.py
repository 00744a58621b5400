"""manifest_author end to end: the scripted experimenter reads the layer catalog through
MCP, drafts a manifest with a width error, gets the precise validation error back,
repairs it; the process dry-runs and really runs it on CPU through the MCP run tools,
reads the results, asks the reviewer, and writes the leaderboard, best.yml and report."""

from __future__ import annotations

import json
from pathlib import Path

from caramba.agents.models import ModelOverride
from caramba.agents.session import ProcessSpec, run_process
from caramba.tests.support.agents import caramba, events, llm_personas
from caramba.tests.support.mcp_manifests import tiny, tiny_bad_width
from caramba.tests.support.scripted_llm import ScriptedLLM, scripted_llm  # noqa: F401
from caramba.workspace import Workspace

VERDICT = '```json\n{"verdict": "accept", "score": 7, "reasons": ["ran cleanly", "one seed only"]}\n```'


def test_draft_repair_run_read(tmp_path: Path, scripted_llm: ScriptedLLM) -> None:
    llm = scripted_llm
    llm.add_turn("Let me read the catalog.", tool_calls=[{"name": "layer_catalog", "arguments": {"name": "SwiGLULayer"}}])
    llm.add_turn(f"Here it is:\n```yaml\n{tiny_bad_width()}```")
    llm.add_turn(f"Fixed the width:\n```yaml\n{tiny(steps=3)}```")
    llm.add_turn(VERDICT)
    spec = ProcessSpec("manifest_author", "author", {}, {
        "type": "research_loop", "goal": "lowest train_loss of a tiny LM in 3 steps", "metric": "train_loss",
        "max_iterations": 1, "max_repairs": 2, "device": "cpu", "run_timeout_s": 600})
    result = run_process(spec, workspace=Workspace(tmp_path), override=ModelOverride("openai/scripted", llm.base_url))

    out = result.run_dir
    evs = events(out)
    assert llm_personas(evs) == ["experimenter", "experimenter", "experimenter", "reviewer"]
    catalog = next(e for e in evs if e["event"] == "tool_call" and e["tool"] == "layer_catalog")
    assert catalog["ok"] and catalog["persona"] == "experimenter" and "SwiGLULayer" in str(catalog["result"])
    # the validation error travelled back to the experimenter with its YAML path
    repair_prompt = llm.chat_requests()[2].prompt
    assert "layers[1].d_model" in repair_prompt
    attempts = [e for e in evs if e["event"] == "manifest_attempt"]
    assert [a["valid"] for a in attempts] == [False, True]
    bad, good = (tmp_path / a["path"] for a in attempts)
    assert "d_model: 48" in bad.read_text() and good.read_text() == tiny(steps=3)
    tools = [e["tool"] for e in evs if e["event"] == "tool_call" and e["persona"] == "process"]
    assert tools == ["validate_manifest", "validate_manifest", "dry_run_manifest", "run_manifest", "wait_run", "get_results"]

    board = json.loads((out / "leaderboard.json").read_text())
    assert len(board) == 1 and board[0]["state"] == "completed" and board[0]["verdict"]["verdict"] == "accept"
    run_dir = tmp_path / board[0]["run_dir"]
    assert run_dir.parent == tmp_path / "runs" / "tiny" / "train"            # the run really happened
    results = json.loads((run_dir / "results.json").read_text())
    assert board[0]["value"] == results["runs"]["a"]["train_loss"]
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any(r["split"] == "train" and r["step"] == 3 for r in rows)
    assert (out / "best.yml").read_text() == tiny(steps=3)
    assert str(board[0]["value"]) in (out / "report.md").read_text()
    # every saved manifest is re-runnable with `caramba run`
    dry = caramba(tmp_path, "run", str(good), "--dry-run")
    assert dry.returncode == 0, dry.stderr
