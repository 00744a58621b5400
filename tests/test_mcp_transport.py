"""The MCP server over its real transports: stdio subprocess and HTTP on loopback.

Covers: tool listing with output schemas, the workspace sandbox (``..``, absolute paths,
symlinks out, ``.caramba/``), the bearer token (generated once, missing/invalid refused),
the Origin check, and the bind policy.
"""

from __future__ import annotations

import os
import subprocess
import sys

import anyio
import httpx
import pytest

from caramba.tests.support.mcp_procs import error_text, http_client, http_server, server_env, stdio_client, structured, token_of

EXPECTED_TOOLS = {
    "list_presets", "get_preset", "layer_catalog", "validate_manifest", "dry_run_manifest", "write_manifest",
    "run_manifest", "run_status", "wait_run", "cancel_run", "resume_run", "list_runs", "get_results",
    "get_artifact", "compare_runs", "memory_add", "memory_search", "rag_index", "rag_search",
    "read_file", "list_files", "search_files",
}


def _workspace(tmp_path):
    ws = tmp_path / "ws"
    (ws / "notes").mkdir(parents=True)
    (ws / "notes" / "idea.md").write_text("try rotary embeddings with theta 500k\n")
    outside = tmp_path / "secret.txt"
    outside.write_text("do not leak\n")
    os.symlink(outside, ws / "notes" / "link_out.txt")
    return ws


async def _sandbox_checks(client) -> None:
    tools = (await client.list_tools()).tools
    names = {t.name for t in tools}
    assert EXPECTED_TOOLS <= names
    assert all(t.output_schema is not None for t in tools if t.name in EXPECTED_TOOLS)

    got = structured(await client.call_tool("read_file", {"path": "notes/idea.md"}))
    assert got["text"].startswith("try rotary") and not got["truncated"]
    hits = structured(await client.call_tool("search_files", {"query": "theta"}))["hits"]
    assert [h["path"] for h in hits] == ["notes/idea.md"]

    for bad in ("../secret.txt", "notes/../../secret.txt", "/etc/passwd"):
        assert "outside the workspace" in error_text(await client.call_tool("read_file", {"path": bad}))
    assert "outside the workspace" in error_text(await client.call_tool("read_file", {"path": "notes/link_out.txt"}))
    assert ".caramba" in error_text(await client.call_tool("list_files", {"path": ".caramba"}))
    listed = structured(await client.call_tool("list_files", {"path": "notes"}))["entries"]
    assert [e["path"] for e in listed] == ["notes/idea.md"]  # the escaping link is not even listed


def test_stdio_lists_tools_and_confines_paths(tmp_path):
    ws = _workspace(tmp_path)

    async def main() -> None:
        async with stdio_client(ws) as client:
            await _sandbox_checks(client)

    anyio.run(main)


def test_http_token_origin_and_sandbox(tmp_path):
    ws = _workspace(tmp_path)
    with http_server(ws) as (url, _proc, err):
        token = token_of(ws)
        assert len(token) >= 32
        printed = err.read_text()
        assert "generated bearer token" in printed and token in printed

        # plain HTTP: no token, a wrong token, a foreign Origin
        body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        h = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
        r = httpx.post(url, json=body, headers=h)
        assert r.status_code == 401 and r.json()["error"] == "invalid_token"
        r = httpx.post(url, json=body, headers={**h, "authorization": "Bearer nope"})
        assert r.status_code == 401
        r = httpx.post(url, json=body, headers={**h, "authorization": f"Bearer {token}",
                                                "origin": "https://evil.example"})
        assert r.status_code == 403 and "Origin" in r.json()["message"]

        async def main() -> None:
            async with http_client(url, token) as client:
                await _sandbox_checks(client)
            with pytest.raises(Exception):
                async with http_client(url, "wrong-token") as client:
                    await client.list_tools()

        anyio.run(main)

    # second start: the stored token is reused and not printed again
    with http_server(ws) as (_url, _proc, err):
        assert token_of(ws) == token
        assert token not in err.read_text()


def test_non_local_bind_without_token_is_refused(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    proc = subprocess.run([sys.executable, "-m", "caramba", "mcp", "serve", "--http", "--host", "0.0.0.0",
                           "--no-auth", "--workspace", str(ws)], capture_output=True, text=True,
                          env=server_env(), timeout=60)
    assert proc.returncode == 2
    assert "without a bearer token" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""
    # the generated workspace token is for local clients: a non-loopback bind needs a managed one
    env = {k: v for k, v in server_env().items() if k != "CARAMBA_MCP_TOKEN"}
    proc = subprocess.run([sys.executable, "-m", "caramba", "mcp", "serve", "--http", "--host", "0.0.0.0",
                           "--port", "1", "--workspace", str(ws)], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2 and "with the token caramba generated" in proc.stderr, proc.stderr
    assert "CARAMBA_MCP_TOKEN or mcp.token" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "caramba", "mcp", "serve", "--workspace", str(ws)],
                          capture_output=True, text=True, env=server_env(), timeout=60)
    assert proc.returncode == 2 and "--stdio or --http" in proc.stderr and "Traceback" not in proc.stderr


def test_stdio_stdout_carries_only_protocol_messages(tmp_path):
    """Raw JSON-RPC over the pipes: every stdout line is a JSON-RPC message, even while
    the engine (torch, kernels, plan) is imported and used; diagnostics go to stderr."""
    import json

    from caramba.tests.support.mcp_manifests import tiny

    ws = tmp_path / "ws"
    ws.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "caramba", "mcp", "serve", "--stdio", "--workspace", str(ws)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=server_env())
    msgs = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
         "params": {"name": "dry_run_manifest", "arguments": {"text": tiny()}}},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "read_file", "arguments": {"path": "../x"}}},
    ]
    try:
        assert proc.stdin is not None and proc.stdout is not None
        for m in msgs:
            proc.stdin.write(json.dumps(m) + "\n")
        proc.stdin.flush()
        answers: dict[int, dict] = {}
        while len(answers) < 3:
            line = proc.stdout.readline()
            assert line, f"server closed stdout early; stderr: {proc.stderr.read() if proc.stderr else ''}"
            msg = json.loads(line)  # anything that is not JSON-RPC fails here
            assert msg["jsonrpc"] == "2.0"
            if "id" in msg:
                answers[msg["id"]] = msg
        plan = answers[2]["result"]["structuredContent"]["plan"]
        assert plan["targets"][0]["params"] > 0
        assert answers[3]["result"]["isError"] is True
        assert "outside the workspace" in answers[3]["result"]["content"][0]["text"]
    finally:
        proc.stdin.close()  # EOF: the server exits
        rest = proc.stdout.read()
        proc.wait(timeout=30)
    for line in rest.splitlines():
        json.loads(line)
