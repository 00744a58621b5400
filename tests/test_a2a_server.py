"""A2A: the real `caramba a2a serve` subprocess (ADK to_a2a + uvicorn, agents on LiteLLM →
scripted server) against the a2a-sdk client: agent card with skills and streaming, a
streamed message ending in a completed task, cancellation of a slow task, and the
`caramba chat --a2a` terminal client."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import CancelTaskRequest, Message, Part, Role, SendMessageRequest, TaskState

from caramba.agents.session import ProcessSpec, run_process
from caramba.tests.support.agents import agent_env, caramba, events, llm_personas
from caramba.tests.support.procs import free_port
from caramba.tests.support.scripted_llm import ScriptedLLM, scripted_llm  # noqa: F401
from caramba.workspace import Workspace


def _wait_listening(proc: subprocess.Popen[bytes], port: int, err: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"a2a serve exited {proc.returncode}: {err.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"a2a serve did not listen: {err.read_text()}") from None
            time.sleep(0.2)


def _msg(text: str) -> SendMessageRequest:
    return SendMessageRequest(message=Message(role=Role.ROLE_USER, message_id=uuid.uuid4().hex, parts=[Part(text=text)]))


async def _exercise(url: str) -> dict[str, object]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=300.0)) as http:
        card = await A2ACardResolver(http, url).get_agent_card()
        client = ClientFactory(ClientConfig(streaming=True, httpx_client=http)).create(card)
        kinds, states, texts = [], [], []
        async for resp in client.send_message(_msg("Summarise what caramba can run.")):
            kind = resp.WhichOneof("payload")
            kinds.append(kind)
            if kind == "status_update":
                states.append(TaskState.Name(resp.status_update.status.state))
            if kind == "task":
                states.append(TaskState.Name(resp.task.status.state))
                texts += [p.text for a in resp.task.artifacts for p in a.parts]
            if kind == "artifact_update":
                texts += [p.text for p in resp.artifact_update.artifact.parts]
        # cancellation: the model answers slowly, the client cancels the task meanwhile
        task_id, cancelled = None, None
        stream = client.send_message(_msg("SLOW request please"))
        async for resp in stream:
            kind = resp.WhichOneof("payload")
            task_id = resp.task.id if kind == "task" else resp.status_update.task_id if kind == "status_update" else task_id
            if task_id:
                cancelled = await client.cancel_task(CancelTaskRequest(id=task_id))
                break
        await stream.aclose()
        await client.close()
        return {"card": card, "kinds": kinds, "states": states, "texts": texts,
                "cancelled": TaskState.Name(cancelled.status.state) if cancelled is not None else None}


def test_a2a_card_stream_cancel_and_chat(tmp_path: Path, scripted_llm: ScriptedLLM) -> None:
    llm = scripted_llm
    llm.add_turn("Checking presets.", tool_calls=[{"name": "list_presets", "arguments": {}}])
    llm.add_turn("caramba runs manifests such as mlp_classifier and standard_transformer.")
    llm.add_turn("too late", when=lambda body: "SLOW" in str(body) and (time.sleep(4) or True))
    port = free_port()
    err = tmp_path / "a2a.stderr"
    with err.open("wb") as ferr:
        proc = subprocess.Popen([sys.executable, "-m", "caramba", "a2a", "serve", "--port", str(port), "--model",
                                 "openai/scripted", "--api-base", llm.base_url],
                                cwd=tmp_path, env=agent_env(), stdout=subprocess.DEVNULL, stderr=ferr)
    try:
        _wait_listening(proc, port, err)
        url = f"http://127.0.0.1:{port}"
        got = asyncio.run(_exercise(url))
        card = got["card"]
        assert card.capabilities.streaming
        assert {s.id for s in card.skills} == {"brainstorm", "design_experiment", "run_manifest", "summarise_results"}
        assert card.supported_interfaces[0].url == url
        assert "status_update" in got["kinds"] and "TASK_STATE_WORKING" in got["states"]
        assert got["states"][-1] == "TASK_STATE_COMPLETED"
        assert any("mlp_classifier and standard_transformer" in t for t in got["texts"])
        assert got["cancelled"] == "TASK_STATE_CANCELED"

        llm.add_turn("Hello from the lead via chat.")
        chat = caramba(tmp_path, "chat", "--a2a", url, "-m", "hi there")
        assert chat.returncode == 0, chat.stderr
        assert "summarise_results" not in chat.stdout and "Summarise results" in chat.stdout
        assert "[TASK_STATE_COMPLETED]> Hello from the lead via chat." in chat.stdout

        llm.add_turn("PONG from the lead.")                     # the a2a_chat process target
        done = run_process(ProcessSpec("chat", "ping", {}, {"type": "a2a_chat", "url": url, "message": "ping"}),
                           workspace=Workspace(tmp_path))
        ex = next(e for e in events(done.run_dir) if e["event"] == "a2a_exchange")
        assert (ex["message"], ex["state"], ex["reply"]) == ("ping", "TASK_STATE_COMPLETED", "PONG from the lead.")
        assert "PONG from the lead." in (done.run_dir / "chat.md").read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    bad = caramba(tmp_path, "chat", "--a2a", url, "-m", "anyone?")       # the server is gone now
    assert bad.returncode == 2 and "no A2A agent card" in bad.stderr and "Traceback" not in bad.stderr
    run_dir = next((tmp_path / "runs" / "a2a" / "research_lead").iterdir())
    evs = events(run_dir)
    assert llm_personas(evs)[:2] == ["research_lead", "research_lead"]
    assert any(e["event"] == "tool_call" and e["tool"] == "list_presets" and e["ok"] for e in evs)
