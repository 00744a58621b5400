"""Pre-flight and limits: no usable model → exit 2 naming persona/model/how to configure,
nothing written; personas and their tool allowlists match the real MCP server; bad
process sections; the LLM-call budget stops a process cleanly with its transcript."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from mcp import Client

from caramba.agents.budget import BudgetExceeded
from caramba.agents.config import ProcessConfigError
from caramba.agents.models import ModelOverride
from caramba.agents.personas import PersonaError, list_personas, load_persona
from caramba.agents.session import ProcessSpec, run_process
from caramba.agents.toolgroups import GROUPS
from caramba.tests.support.agents import caramba, events
from caramba.tests.support.scripted_llm import ScriptedLLM, scripted_llm  # noqa: F401
from caramba.tools.server import ServerOptions, build_server
from caramba.workspace import Workspace

MANIFESTS = Path(__file__).resolve().parent.parent / "manifests"


def test_no_model_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    r = caramba(tmp_path, "brainstorm", "--topic", "x")
    assert r.returncode == 2, r.stderr
    assert "persona 'research_lead'" in r.stderr and "no model" in r.stderr and "llm.model" in r.stderr
    assert "persona 'claude'" in r.stderr and "anthropic/claude-sonnet-4-5" in r.stderr and "ANTHROPIC_API_KEY" in r.stderr
    assert "--model" in r.stderr and "Traceback" not in r.stderr
    r = caramba(tmp_path, "run", str(MANIFESTS / "manifest_author.yml"))
    assert r.returncode == 2 and "persona 'experimenter'" in r.stderr and "Traceback" not in r.stderr
    r = caramba(tmp_path, "a2a", "serve", "--port", "1")
    assert r.returncode == 2 and "persona 'research_lead'" in r.stderr
    assert not (tmp_path / "runs").exists()


def test_personas_and_tool_groups_match_the_server(tmp_path: Path) -> None:
    names = list_personas()
    for required in ("research_lead", "architect", "experimenter", "reviewer", "writer", "chatgpt", "claude", "gemini"):
        assert required in names
        load_persona(required)
    server, _ = build_server(ServerOptions(workspace=tmp_path))

    async def tools() -> set[str]:
        async with Client(server) as client:
            return {t.name for t in (await client.list_tools()).tools}

    served = anyio.run(tools)
    assert {n for g in GROUPS.values() for n in g} == served
    (tmp_path / "personas").mkdir()
    (tmp_path / "personas" / "claude.yml").write_text("name: claude\ndescription: d\ninstructions: i\ntools: [rockets]\n")
    with pytest.raises(PersonaError, match="unknown tool group"):
        load_persona("claude", tmp_path)
    with pytest.raises(PersonaError, match="unknown persona 'nobody'"):
        load_persona("nobody")


def test_bad_process_section(tmp_path: Path) -> None:
    with pytest.raises(ProcessConfigError, match="unknown process type 'dance'"):
        run_process(ProcessSpec("m", "t", {}, {"type": "dance"}), workspace=Workspace(tmp_path))
    with pytest.raises(ProcessConfigError, match=r"process\.rounds"):
        run_process(ProcessSpec("m", "t", {}, {"type": "brainstorm", "rounds": 0}), workspace=Workspace(tmp_path))
    assert not (tmp_path / "runs").exists()


def test_llm_call_budget_stops_the_process(tmp_path: Path, scripted_llm: ScriptedLLM) -> None:
    scripted_llm.add_turn("LEAD-OPEN")
    scripted_llm.add_turn("never reached")
    spec = ProcessSpec("brainstorm", "b", {"lead": "research_lead", "reviewer": "reviewer"},
                       {"type": "brainstorm", "topic": "t", "budget": {"max_llm_calls": 1}})
    with pytest.raises(BudgetExceeded, match=r"1/1 calls"):
        run_process(spec, workspace=Workspace(tmp_path), override=ModelOverride("openai/scripted", scripted_llm.base_url),
                    with_mcp=False)
    run_dir = next((tmp_path / "runs" / "brainstorm" / "b").iterdir())
    assert json.loads((run_dir / "run.json").read_text())["state"] == "failed"
    evs = events(run_dir)
    assert [e["event"] for e in evs].count("llm_turn") == 1 and scripted_llm.pending_turns == 1
    assert "budget" in next(e for e in evs if e["event"] == "error")["message"]


def test_personas_command(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from caramba.cli import main

    for var in ("CARAMBA_LLM_MODEL", "CARAMBA_LLM_API_BASE", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["personas", "--workspace", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ANTHROPIC_API_KEY" in out and "no model" in out
    assert main(["personas", "--workspace", str(tmp_path), "--model", "openai/local", "--api-base",
                 "http://127.0.0.1:9/v1"]) == 0
    out = capsys.readouterr().out
    assert out.count("openai/local at http://127.0.0.1:9/v1") == len(list_personas())
