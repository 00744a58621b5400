"""Brainstorm through the real path: LiteLLM → HTTP (scripted server) → ADK → MCP → engine.

Non-interactive: every member's turn is in the transcript with shared context, the lead's
ranked proposals are parsed and each is validated against its preset through the MCP
``validate_manifest`` tool. Interactive: the REPL driven through a pseudo-terminal
(``@claude`` routing, ``/wipe``, ``/save``, ``/exit``)."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from caramba.agents.models import ModelOverride
from caramba.agents.session import ProcessSpec, run_process
from caramba.tests.support.agents import agent_env, events, llm_personas
from caramba.tests.support.falkordb import falkordb_workspace  # noqa: F401
from caramba.tests.support.scripted_llm import ScriptedLLM, scripted_llm  # noqa: F401
from caramba.workspace import Workspace

PROPOSALS = """Ranked:
```json
[{"rank": 2, "title": "No dropout", "rationale": "tiny data", "base": "mlp_classifier",
  "overrides": ["targets[0].system.config.dropout=0.0"], "metric": "val_accuracy"},
 {"rank": 1, "title": "Train longer", "rationale": "loss still falling", "base": "mlp_classifier",
  "overrides": ["targets[0].runs[0].steps=900"], "metric": "val_loss"},
 {"rank": 3, "title": "Broken idea", "rationale": "typo", "base": "mlp_classifier",
  "overrides": ["targets[0].runs[0].stepz=5"]}]
```"""


def test_brainstorm_topic_rounds(tmp_path: Path, scripted_llm: ScriptedLLM) -> None:
    llm = scripted_llm
    llm.add_turn("Checking presets first.", tool_calls=[{"name": "list_presets", "arguments": {}}])
    llm.add_turn("LEAD-OPEN: how do we make the digits MLP better?")
    llm.add_turn("ARCH-1: widen the hidden layers to 512.")
    llm.add_turn("CLAUDE-1: train longer, the loss is still falling.")
    llm.add_turn("Not valid JSON at all")          # the lead's first closing reply is unusable …
    llm.add_turn(PROPOSALS)                         # … the precise problem is sent back, then it complies
    spec = ProcessSpec("brainstorm", "brainstorm", {"lead": "research_lead", "architect": "architect",
                                                    "claude": "claude"},
                       {"type": "brainstorm", "topic": "digits MLP", "rounds": 1})
    result = run_process(spec, workspace=Workspace(tmp_path), override=ModelOverride("openai/scripted", llm.base_url))

    run_dir = result.run_dir
    assert run_dir.parent == tmp_path / "runs" / "brainstorm" / "brainstorm"
    assert json.loads((run_dir / "run.json").read_text())["state"] == "completed"
    evs = events(run_dir)
    assert llm_personas(evs) == ["research_lead", "research_lead", "architect", "claude", "research_lead", "research_lead"]
    tool = next(e for e in evs if e["event"] == "tool_call" and e["tool"] == "list_presets")
    assert tool["ok"] and tool["persona"] == "research_lead" and "\"name\": \"brainstorm\"" in str(tool["result"])
    assert all(e["duration_s"] >= 0 for e in evs if e["event"] in ("llm_turn", "tool_call"))
    # shared context: claude saw the lead and the architect; the final request saw everyone
    chats = llm.chat_requests()
    assert "ARCH-1" in chats[3].prompt and "LEAD-OPEN" in chats[3].prompt and "Claude (Anthropic)" in chats[3].prompt
    assert "CLAUDE-1" in chats[4].prompt
    assert "no ```json block" in chats[5].prompt          # the repair message names the problem
    proposals = json.loads((run_dir / "proposals.json").read_text())
    assert [p["title"] for p in proposals] == ["Train longer", "No dropout", "Broken idea"]
    assert [p["valid"] for p in proposals] == [True, True, False]
    assert "stepz" in proposals[2]["issues"]
    discussion = (run_dir / "discussion.md").read_text()
    assert "ARCH-1" in discussion and "CLAUDE-1" in discussion
    finished = evs[-1]
    assert finished["event"] == "process_finished" and finished["totals"]["llm_calls"] == 6


def _read_until(fd: int, needle: str, buf: list[str], timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while needle not in "".join(buf):
        if time.monotonic() > deadline:
            raise AssertionError(f"did not see {needle!r}; output so far:\n{''.join(buf)}")
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                buf.append(os.read(fd, 4096).decode(errors="replace"))
            except OSError:
                break
    return "".join(buf)


def test_brainstorm_repl_through_a_pty(tmp_path: Path, scripted_llm: ScriptedLLM) -> None:
    llm = scripted_llm
    llm.add_turn("LEAD-REPLY-1 about attention")
    llm.add_turn("CLAUDE-REPLY about attention")
    llm.add_turn("LEAD-REPLY-2 fresh start")
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "caramba", "brainstorm", "--model", "openai/scripted",
                             "--api-base", llm.base_url, "--team", "lead=research_lead", "--team", "claude=claude"],
                            stdin=slave, stdout=slave, stderr=slave, cwd=tmp_path, env=agent_env(), close_fds=True)
    os.close(slave)
    buf: list[str] = []
    try:
        _read_until(master, "you> ", buf)
        for line, expect in (("what about attention?", "LEAD-REPLY-1"), ("@claude your view?", "CLAUDE-REPLY"),
                             ("@nobody hi", "no 'nobody' on this team"), ("/wipe", "(context wiped)"),
                             ("start again", "LEAD-REPLY-2"), ("/save", "(saved ")):
            os.write(master, (line + "\n").encode())
            _read_until(master, expect, buf)
        os.write(master, b"/exit\n")
        assert proc.wait(timeout=120) == 0, "".join(buf)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    chats = llm.chat_requests()
    assert "Claude (Anthropic)" in chats[1].prompt and "LEAD-REPLY-1" in chats[1].prompt   # routed, shared context
    assert "LEAD-REPLY-1" not in chats[2].prompt and "CLAUDE-REPLY" not in chats[2].prompt  # /wipe cleared it
    run_dir = next((tmp_path / "runs" / "brainstorm" / "brainstorm").iterdir())
    evs = events(run_dir)
    assert llm_personas(evs) == ["research_lead", "claude", "research_lead"]
    assert [e["event"] for e in evs if e["event"] in ("wipe", "save")] == ["wipe", "save"]
    assert "LEAD-REPLY-2" in (run_dir / "discussion.md").read_text()


def test_brainstorm_summary_goes_to_graphiti_memory(falkordb_workspace, scripted_llm: ScriptedLLM) -> None:
    import asyncio

    from caramba.memory.graph_memory import GraphMemory
    from caramba.tests.support.graphiti_script import script_graphiti

    ws, _ = falkordb_workspace
    llm = scripted_llm
    fact = "SwiGLU beats the GELU MLP at equal parameter count"
    script_graphiti(llm, [("SwiGLU", "BEATS", "GELU MLP", fact)])
    # the workspace's own llm (no --model override) drives both the personas and Graphiti
    (ws.root / "caramba.yml").write_text(f"memory: {{enabled: true}}\nllm: {{model: openai/scripted, api_base: '{llm.base_url}'}}\n")
    llm.add_turn("We know SwiGLU beats the GELU MLP; what next?")
    llm.add_turn('```json\n[{"rank": 1, "title": "GEGLU", "base": "standard_transformer", '
                 '"overrides": ["vars.mlp=GEGLULayer"]}]\n```')
    spec = ProcessSpec("brainstorm", "solo", {"lead": "research_lead"},
                       {"type": "brainstorm", "topic": "MLP blocks", "validate_proposals": False})
    result = run_process(spec, workspace=ws, with_mcp=False)
    mem = next(e for e in events(result.run_dir) if e["event"] == "memory")
    assert mem["facts"] == [fact]

    async def facts() -> list[str]:
        async with GraphMemory(ws) as m:
            return [f.fact for f in await m.search("SwiGLU GELU MLP")]

    assert asyncio.run(facts()) == [fact]
