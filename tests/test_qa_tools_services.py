"""QA sweep of the MCP tools and the REST API with a researcher's bad input (session 3).

* A run asked for on a device that cannot exist here (``banana``, CUDA on a CPU-only
  host) is refused by ``run_manifest`` / ``POST /api/runs`` before any job starts; it used
  to start a job that failed seconds later with the whole log as its message.
* A request FastAPI itself refuses (malformed JSON, a wrong type, a bad query value) gets
  the API's documented ``{error, message, fix}`` body (FastAPI's ``detail`` kept); it used
  to be a bare ``{"detail": [...]}``.
* The catalog finds a component whatever its case and suggests the closest names for a
  typo (MCP ``layer_catalog`` and ``GET /api/catalog`` alike).
* A failed run's ``message`` starts with the run's own error and fix (it started with the
  command line, the error buried in the log tail).
* ``search_files`` names the files it skipped for size (a silent skip read as "not found").
* MCP prompts with a missing/unknown argument are INVALID_PARAMS naming the arguments.
* ``caramba serve`` / ``mcp serve --http`` / ``a2a serve`` on a busy or impossible port:
  one ``error: … fix: …`` line, exit 2, and no "serving" line before it.
"""

from __future__ import annotations

import anyio
import pytest
import torch
from fastapi.testclient import TestClient

from caramba.api.app import ApiOptions, create_app
from caramba.tests.support.mcp_procs import error_text, stdio_client, structured

TOKEN = "qa-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NO_CUDA = not torch.cuda.is_available()


@pytest.fixture
def client(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    with TestClient(create_app(ApiOptions(workspace=ws, token=TOKEN))) as c:
        yield c


def test_rest_request_errors_have_error_message_fix(client) -> None:
    r = client.get("/api/catalog", params={"family": "bogus"}, headers=AUTH)
    body = r.json()
    assert r.status_code == 422 and body["error"] == "invalid_request"
    assert body["message"].startswith("query.family: Input should be 'layers'") and "/docs" in body["fix"]
    assert body["detail"][0]["loc"] == ["query", "family"]                 # FastAPI's list is kept
    r = client.post("/api/manifests/validate", content=b"{not json", headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["message"].startswith("the request body is not valid JSON (")
    r = client.post("/api/manifests/validate", json={"path": 3, "bogus": 1}, headers=AUTH)
    msg = r.json()["message"]
    assert r.status_code == 422 and "body.path: Input should be a valid string" in msg
    assert "body.bogus: Extra inputs are not permitted" in msg


def test_rest_run_on_an_impossible_device_is_refused_before_a_job(client) -> None:
    devices = ["banana", "cuda:0"] if NO_CUDA else ["banana", f"cuda:{torch.cuda.device_count()}"]
    for device in devices:
        r = client.post("/api/runs", json={"path": "preset:mlp_classifier", "device": device}, headers=AUTH)
        assert r.status_code == 400, r.text
        body = r.json()
        assert f"'{device}'" in body["message"] and body["fix"], body
    assert "unknown device 'banana'" in client.post("/api/runs", json={"path": "preset:mlp_classifier", "device": "banana"},
                                                    headers=AUTH).json()["message"]
    assert client.get("/api/runs", headers=AUTH).json()["total"] == 0           # nothing was started


def test_rest_catalog_case_and_did_you_mean(client) -> None:
    r = client.get("/api/catalog", params={"name": "attentionlayer"}, headers=AUTH)
    assert r.status_code == 200 and [e["name"] for e in r.json()] == ["AttentionLayer"]
    r = client.get("/api/catalog", params={"name": "Attentionlayr"}, headers=AUTH)
    assert r.status_code == 404
    assert r.json()["fix"].startswith("did you mean 'AttentionLayer'"), r.json()
    r = client.get("/api/catalog", params={"name": "zzzzqqq"}, headers=AUTH)
    assert r.status_code == 404 and "did you mean" not in r.json()["fix"]


def test_mcp_device_and_catalog_errors(tmp_path) -> None:
    async def main() -> None:
        async with stdio_client(tmp_path) as c:
            bad = await c.call_tool("run_manifest", {"path": "preset:mlp_classifier", "device": "banana"})
            text = error_text(bad)
            assert "unknown device 'banana'" in text and "fix: use auto, cpu, cuda or cuda:N" in text
            if NO_CUDA:
                text = error_text(await c.call_tool("run_manifest", {"path": "preset:mlp_classifier", "device": "cuda"}))
                assert "CUDA is not available on this machine" in text
            assert structured(await c.call_tool("list_runs", {}))["jobs"] == []
            text = error_text(await c.call_tool("layer_catalog", {"name": "Attentionlayr"}))
            assert "did you mean 'AttentionLayer'" in text
            found = structured(await c.call_tool("layer_catalog", {"name": "ATTENTION", "family": "layers"}))
            assert [e["name"] for e in found["components"]] == ["AttentionLayer"]
            await _prompt_errors(c)
            found = structured(await c.call_tool("search_files", {"query": "needle"}))
            assert [h["path"] for h in found["hits"]] == ["notes/small.txt"]
            assert found["skipped_large"] == ["notes/huge.log"]          # said, not silently skipped

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "small.txt").write_text("a needle here\n")
    (tmp_path / "notes" / "huge.log").write_text("needle in a large log\n" * 120_000)  # > 2 MiB

    anyio.run(main)
    assert not (tmp_path / "runs").exists()


async def _prompt_errors(c) -> None:
    """Prompts: bad arguments are INVALID_PARAMS naming what the prompt takes (the SDK said
    "Internal server error"); an unknown job is refused; ``preset:<name>`` works like in the tools."""
    from mcp.shared.exceptions import MCPError
    from mcp_types import INVALID_PARAMS

    cases = [("explain_run", {}, "prompt 'explain_run' arguments: missing job_id\n  fix: it takes job_id"),
             ("review_manifest", {"path": "preset:dba"},
              "prompt 'review_manifest' arguments: missing manifest; unknown path\n  fix: it takes manifest"),
             ("propose_ablation", {"manifest": "preset:dba", "questoin": "x"}, "unknown questoin"),
             ("no_such_prompt", {}, "no prompt named 'no_such_prompt'"),
             ("explain_run", {"job_id": "nope"}, "no job 'nope' in this workspace"),
             ("review_manifest", {"manifest": "preset:nope"}, "no preset named 'nope'")]
    for name, args, expected in cases:
        with pytest.raises(MCPError) as err:
            await c.get_prompt(name, args)
        assert err.value.error.code == INVALID_PARAMS and expected in err.value.error.message, (name, err.value.error)
    text = (await c.get_prompt("review_manifest", {"manifest": "preset:mlp_classifier"})).messages[0].content.text
    assert "name: mlp_classifier" in text and "validate_manifest" in text


def test_servers_refuse_a_busy_or_impossible_port_before_announcing(tmp_path) -> None:
    import socket

    from caramba.tests.support.agents import caramba

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        for args in (["serve"], ["mcp", "serve", "--http"],
                     ["a2a", "serve", "--model", "openai/x", "--api-base", "http://127.0.0.1:9/v1"]):
            done = caramba(tmp_path, *args, "--port", str(port), timeout=120)
            assert done.returncode == 2, (args, done.stderr)
            assert f"error: port {port} on 127.0.0.1 is already in use" in done.stderr, done.stderr
            assert "serving" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    finally:
        busy.close()
    done = caramba(tmp_path, "serve", "--port", "99999", timeout=120)
    assert done.returncode == 2 and "port 99999 is out of range" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()  # a2a serve wrote no transcript for a server that never ran


@pytest.mark.skipif(not NO_CUDA, reason="needs a host without CUDA for the run to fail")
def test_a_failed_run_says_why_first(client) -> None:
    import time

    r = client.post("/api/runs", json={"path": "preset:mlp_classifier",
                                       "overrides": ["targets[0].runs[0].train.device=cuda"]}, headers=AUTH)
    assert r.status_code == 201, r.text
    job = r.json()["job_id"]
    deadline = time.monotonic() + 120
    while (st := client.get(f"/api/runs/{job}", headers=AUTH).json())["state"] in ("starting", "running"):
        assert time.monotonic() < deadline, st
        time.sleep(0.3)
    assert st["state"] == "failed", st
    # the run's own error and its fix lead the message (it began with the command line)
    assert st["message"].startswith("device 'cuda' requested but CUDA is not available on this machine\n  fix: "), st
    assert "\n\nlast output of the run:\n$ " in st["message"]
