"""Delegation: the research lead transfers to its sub-agents — a local persona on its team
in a process, and a remote persona served by another `caramba a2a serve` over A2A (both
from an A2A server of the lead and from a process). The sub-agent's scripted reply comes
back into the lead's transcript and answer; the remote side keeps its own transcript."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import yaml
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import Message, Part, Role, SendMessageRequest, TaskState

from caramba.agents.personas import BUILTIN_DIR, PersonaError, load_persona
from caramba.agents.session import ConsoleIO, ProcessSpec, run_process
from caramba.agents.models import ModelOverride
from caramba.tests.support.agents import agent_env, events, llm_personas
from caramba.tests.support.procs import free_port
from caramba.tests.support.scripted_llm import ScriptedLLM, scripted_llm  # noqa: F401
from caramba.workspace import Workspace

LEAD_SAYS = "research lead of a neural-architecture"          # from research_lead.yml's instructions
REVIEWER_SAYS = "You are the reviewer."                        # from reviewer.yml's instructions


def _transfer(to: str) -> dict[str, object]:
    return {"name": "transfer_to_agent", "arguments": {"agent_name": to}}


def _scripted_io(lines: list[str]) -> tuple[ConsoleIO, list[str]]:
    out: list[str] = []
    feed = iter(lines)
    return ConsoleIO(lambda _prompt: next(feed, None), out.append), out


def _repl(ws: Workspace, llm: ScriptedLLM, target: str, line: str) -> tuple[Path, list[str]]:
    io, out = _scripted_io([line, "/exit"])
    res = run_process(ProcessSpec("talk", target, {"lead": "research_lead", "reviewer": "reviewer"},
                                  {"type": "brainstorm"}),
                      workspace=ws, override=ModelOverride("openai/scripted", llm.base_url), io=io, with_mcp=False)
    return res.run_dir, out


def test_lead_delegates_to_a_local_sub_agent_in_a_process(tmp_path: Path, scripted_llm: ScriptedLLM) -> None:
    llm = scripted_llm
    llm.add_turn("Handing this to the reviewer.", tool_calls=[_transfer("reviewer")])
    llm.add_turn("LOCAL-REVIEW: add a second seed.", when=lambda body: REVIEWER_SAYS in str(body))
    run_dir, out = _repl(Workspace(tmp_path), llm, "local", "Please get this reviewed.")
    assert any("LOCAL-REVIEW: add a second seed." in line for line in out)
    evs = events(run_dir)
    assert llm_personas(evs) == ["research_lead", "reviewer"]
    assert next(e for e in evs if e["event"] == "tool_call")["tool"] == "transfer_to_agent"
    answer = [e for e in evs if e["event"] == "message" and e["role"] == "assistant"][-1]
    assert answer["persona"] == "research_lead" and answer["answered_by"] == "reviewer"
    assert "LOCAL-REVIEW" in answer["text"] and llm.pending_turns == 0


def _serve(ws: Path, port: int, llm: ScriptedLLM, *extra: str) -> tuple[subprocess.Popen[bytes], Path]:
    ws.mkdir(exist_ok=True)
    err = ws / "a2a.stderr"
    with err.open("wb") as ferr:
        proc = subprocess.Popen([sys.executable, "-m", "caramba", "a2a", "serve", "--port", str(port), "--model",
                                 "openai/scripted", "--api-base", llm.base_url, *extra],
                                cwd=ws, env=agent_env(), stdout=subprocess.DEVNULL, stderr=ferr)
    return proc, err


async def _ask(url: str, text: str) -> tuple[str, list[str]]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=300.0)) as http:
        for _ in range(600):                                         # wait for the server's card
            try:
                card = await A2ACardResolver(http, url).get_agent_card()
                break
            except Exception:  # noqa: BLE001 - not listening yet
                await asyncio.sleep(0.3)
        client = ClientFactory(ClientConfig(streaming=True, httpx_client=http)).create(card)
        state, texts = "", []
        msg = Message(role=Role.ROLE_USER, message_id=uuid.uuid4().hex, parts=[Part(text=text)])
        async for resp in client.send_message(SendMessageRequest(message=msg)):
            kind = resp.WhichOneof("payload")
            if kind == "task":
                state = TaskState.Name(resp.task.status.state)
                texts += [p.text for a in resp.task.artifacts for p in a.parts]
            elif kind == "status_update":
                state = TaskState.Name(resp.status_update.status.state)
                texts += [p.text for p in resp.status_update.status.message.parts]
            elif kind == "artifact_update":
                texts += [p.text for p in resp.artifact_update.artifact.parts]
        await client.close()
        return state, texts


def test_lead_delegates_to_a_remote_reviewer_over_a2a(tmp_path: Path, scripted_llm: ScriptedLLM) -> None:
    llm = scripted_llm
    remote_port, lead_port = free_port(), free_port()
    lead_ws = tmp_path / "lead"
    (lead_ws / "personas").mkdir(parents=True)
    lead = yaml.safe_load((BUILTIN_DIR / "research_lead.yml").read_text())
    lead["sub_agents"] = ["architect", {"name": "remote_reviewer", "a2a": f"http://127.0.0.1:{remote_port}",
                                        "description": "Reviewer of the other lab (over A2A)."}]
    (lead_ws / "personas" / "research_lead.yml").write_text(yaml.safe_dump(lead))
    remote, remote_err = _serve(tmp_path / "remote", remote_port, llm, "--persona", "reviewer")
    server, lead_err = _serve(lead_ws, lead_port, llm)
    try:
        llm.add_turn("Asking the other lab.", tool_calls=[_transfer("remote_reviewer")],
                     when=lambda body: LEAD_SAYS in str(body))
        llm.add_turn("REMOTE-VERDICT: revise, one seed is not enough.", when=lambda body: REVIEWER_SAYS in str(body))
        state, texts = asyncio.run(_ask(f"http://127.0.0.1:{lead_port}", "Get run 7 reviewed by the other lab."))
        assert state == "TASK_STATE_COMPLETED", (texts, lead_err.read_text(), remote_err.read_text())
        assert any("REMOTE-VERDICT: revise" in t for t in texts), texts
        assert llm.pending_turns == 0

        # the same remote reviewer, from a process of the lead's workspace
        llm.add_turn("Over to the other lab.", tool_calls=[_transfer("remote_reviewer")],
                     when=lambda body: LEAD_SAYS in str(body))
        llm.add_turn("REMOTE-VERDICT-2: accept.", when=lambda body: REVIEWER_SAYS in str(body))
        run_dir, out = _repl(Workspace(lead_ws), llm, "remote", "Second opinion please.")
        assert any("REMOTE-VERDICT-2: accept." in line for line in out)
        evs = events(run_dir)
        assert next(e for e in evs if e["event"] == "remote_reply")["text"] == "REMOTE-VERDICT-2: accept."
        assert [e for e in evs if e["event"] == "message"][-1]["answered_by"] == "remote_reviewer"
    finally:
        for proc in (server, remote):
            proc.terminate()
        for proc in (server, remote):
            proc.wait(timeout=30)
    lead_evs = events(next((lead_ws / "runs" / "a2a" / "research_lead").iterdir()))
    assert llm_personas(lead_evs) == ["research_lead"]                       # the lead's own model turn
    assert any(e["event"] == "tool_call" and e["tool"] == "transfer_to_agent" for e in lead_evs)
    assert any(e["event"] == "delegation" and e["persona"] == "remote_reviewer" for e in lead_evs)
    reply = next(e for e in lead_evs if e["event"] == "remote_reply")
    assert reply["url"] == f"http://127.0.0.1:{remote_port}" and reply["text"].startswith("REMOTE-VERDICT: revise")
    remote_evs = events(next((tmp_path / "remote" / "runs" / "a2a" / "reviewer").iterdir()))
    assert llm_personas(remote_evs) == ["reviewer", "reviewer"]              # one per delegated request
    assert [e["text"] for e in remote_evs if e["event"] == "llm_turn"][0].startswith("REMOTE-VERDICT: revise")


def test_remote_sub_agent_entries_are_validated(tmp_path: Path) -> None:
    (tmp_path / "personas").mkdir()
    base = "name: research_lead\ndescription: d\ninstructions: i\n"
    (tmp_path / "personas" / "research_lead.yml").write_text(base + "sub_agents: [reviewer, http://127.0.0.1:9001]\n")
    p = load_persona("research_lead", tmp_path)
    assert p.local_sub_agents() == ["reviewer"] and p.remote_sub_agents()[0].name == "a2a_127_0_0_1_9001"
    assert p.remote_sub_agents()[0].card_url == "http://127.0.0.1:9001/.well-known/agent-card.json"
    (tmp_path / "personas" / "research_lead.yml").write_text(base + "sub_agents: [{name: r, a2a: 'ftp://x'}]\n")
    with pytest.raises(PersonaError, match="sub_agents"):
        load_persona("research_lead", tmp_path)
    (tmp_path / "personas" / "research_lead.yml").write_text(
        base + "sub_agents: [reviewer, {name: reviewer, a2a: 'http://127.0.0.1:1'}]\n")
    with pytest.raises(PersonaError, match="unique"):
        load_persona("research_lead", tmp_path)
