"""Process budgets enforced end to end (LiteLLM → HTTP → scripted server reporting usage):
tokens over the limit stop `caramba run` with exit 3 right after the turn that went over
(its tool calls never run, no outputs written); a cost budget prices calls from LiteLLM's
table for a known model name and stops when spent, and refuses an unpriced model up
front; the wall-clock limit cancels a model call in flight. Every turn's tokens and cost
are in events.jsonl and the totals in run.json."""

from __future__ import annotations

import json
import time
from pathlib import Path

import litellm
import pytest

from caramba.agents.budget import BudgetExceeded, UnpricedModel
from caramba.agents.models import ModelOverride
from caramba.agents.session import ProcessSpec, run_process
from caramba.tests.support.agents import caramba, events, only_run_dir
from caramba.tests.support.scripted_llm import ScriptedLLM, scripted_llm  # noqa: F401
from caramba.workspace import Workspace


def _manifest(base_url: str, budget: str) -> str:
    return ("version: 2\nname: bs\ntargets:\n  - type: process\n    name: talk\n"
            "    team: {lead: research_lead, reviewer: reviewer}\n    process:\n      type: brainstorm\n"
            f"      topic: cheaper attention\n      model: openai/scripted\n      api_base: {base_url}\n"
            f"      budget: {budget}\n")


def test_token_budget_stops_caramba_run(tmp_path: Path, scripted_llm: ScriptedLLM) -> None:
    llm = scripted_llm
    llm.add_turn("LEAD-OPEN frame", usage={"prompt_tokens": 400, "completion_tokens": 50})
    llm.add_turn("REVIEWER idea", tool_calls=[{"name": "list_presets", "arguments": {}}],
                 usage={"prompt_tokens": 300, "completion_tokens": 20})
    llm.add_turn("never reached")
    (tmp_path / "bs.yml").write_text(_manifest(llm.base_url, "{max_tokens: 500}"))
    r = caramba(tmp_path, "run", "bs.yml")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "token budget exceeded: 770 tokens used (700 prompt + 70 completion), limit 500" in r.stderr
    assert "process.budget.max_tokens" in r.stderr and "Traceback" not in r.stderr
    assert llm.pending_turns == 1
    run_dir = only_run_dir(tmp_path, "bs", "talk")
    evs = events(run_dir)
    turns = [e for e in evs if e["event"] == "llm_turn"]
    assert [(t["persona"], t["prompt_tokens"], t["completion_tokens"], t["cost_usd"]) for t in turns] == \
        [("research_lead", 400, 50, None), ("reviewer", 300, 20, None)]
    assert turns[1]["tool_calls"] == [{"name": "list_presets", "args": {}}]
    assert not [e for e in evs if e["event"] == "tool_call"]                 # stopped before the tool ran
    stop = next(e for e in evs if e["event"] == "budget_exceeded")
    assert stop["limit"] == "max_tokens" and stop["totals"]["tokens"] == 770
    assert "token budget exceeded" in next(e for e in evs if e["event"] == "error")["message"]
    info = json.loads((run_dir / "run.json").read_text())
    assert info["state"] == "failed" and info["totals"]["tokens"] == 770 and info["totals"]["cost_usd"] is None
    assert info["totals"]["unpriced_calls"] == 2
    assert not (run_dir / "proposals.json").exists() and not (run_dir / "discussion.md").exists()
    assert not list(run_dir.glob(".*.tmp"))


def test_cost_budget_prices_calls_and_stops(tmp_path: Path, scripted_llm: ScriptedLLM) -> None:
    llm = scripted_llm
    model = "openai/gpt-4o-mini"                     # priced in LiteLLM's table, served by the scripted server
    entry = litellm.model_cost["gpt-4o-mini"]
    cost = lambda p, c: p * entry["input_cost_per_token"] + c * entry["output_cost_per_token"]  # noqa: E731
    first, second = (60_000, 1_000), (10_000, 0)
    limit = (cost(*first) + cost(*second)) * 0.9     # the first call fits, the second goes over
    assert cost(*first) < limit
    llm.add_turn("LEAD-OPEN", usage={"prompt_tokens": first[0], "completion_tokens": first[1]})
    llm.add_turn("REVIEWER", usage={"prompt_tokens": second[0], "completion_tokens": second[1]})
    llm.add_turn("never reached")
    spec = ProcessSpec("bs", "cost", {"lead": "research_lead", "reviewer": "reviewer"},
                       {"type": "brainstorm", "topic": "t", "budget": {"max_cost_usd": limit}})
    with pytest.raises(BudgetExceeded, match="cost budget exceeded") as e:
        run_process(spec, workspace=Workspace(tmp_path), override=ModelOverride(model, llm.base_url), with_mcp=False)
    assert e.value.limit == "max_cost_usd" and e.value.exit_code == 3
    run_dir = only_run_dir(tmp_path, "bs", "cost")
    turns = [ev for ev in events(run_dir) if ev["event"] == "llm_turn"]
    assert [t["cost_usd"] for t in turns] == pytest.approx([cost(*first), cost(*second)])
    totals = json.loads((run_dir / "run.json").read_text())["totals"]
    assert totals["cost_usd"] == pytest.approx(cost(*first) + cost(*second)) and totals["unpriced_calls"] == 0
    assert llm.pending_turns == 1

    # an unpriced model under a cost budget: refused before anything runs or is written
    spec = ProcessSpec("bs", "unpriced", {"lead": "research_lead"},
                       {"type": "brainstorm", "topic": "t", "budget": {"max_cost_usd": 1}})
    with pytest.raises(UnpricedModel, match=r"persona 'research_lead' uses 'openai/scripted'.*count as \$0"):
        run_process(spec, workspace=Workspace(tmp_path), override=ModelOverride("openai/scripted", llm.base_url),
                    with_mcp=False)
    assert not (tmp_path / "runs" / "bs" / "unpriced").exists() and llm.pending_turns == 1
    r = caramba(tmp_path, "brainstorm", "--topic", "t", "--team", "lead=research_lead", "--model", "openai/scripted",
                "--api-base", llm.base_url, "--max-cost-usd", "0.5")
    assert r.returncode == 2 and "no price for persona 'research_lead'" in r.stderr and "max_tokens" in r.stderr
    assert not (tmp_path / "runs" / "brainstorm").exists()


def test_wall_clock_budget_cancels_a_call_in_flight(tmp_path: Path, scripted_llm: ScriptedLLM) -> None:
    scripted_llm.add_turn("too late", delay_s=30)
    spec = ProcessSpec("bs", "wall", {"lead": "research_lead"},
                       {"type": "brainstorm", "topic": "t", "budget": {"max_wall_s": 2}})
    t0 = time.monotonic()
    with pytest.raises(BudgetExceeded, match=r"wall-clock budget used up \(\d+\.\ds of 2s\)"):
        run_process(spec, workspace=Workspace(tmp_path),
                    override=ModelOverride("openai/scripted", scripted_llm.base_url), with_mcp=False)
    assert time.monotonic() - t0 < 20                 # not the 30 s the model would have taken
    run_dir = only_run_dir(tmp_path, "bs", "wall")
    evs = events(run_dir)
    assert not [e for e in evs if e["event"] == "llm_turn"]
    assert next(e for e in evs if e["event"] == "budget_exceeded")["limit"] == "max_wall_s"
    info = json.loads((run_dir / "run.json").read_text())
    assert info["state"] == "failed" and info["totals"]["wall_s"] >= 2 and info["totals"]["llm_calls"] == 0
