"""Real caramba MCP servers for tests: a stdio subprocess or an HTTP server on loopback,
and SDK clients connected to them (no mocks: the real ``caramba mcp serve`` command)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from caramba.tests.support.procs import free_port, stop_process


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CARAMBA_MCP_TOKEN", None)
    return env


def stdio_client(ws: Path, *args: str) -> Client:
    """An SDK client that launches ``caramba mcp serve --stdio`` as a subprocess."""
    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "caramba", "mcp", "serve", "--stdio", "--workspace", str(ws), *args],
                                   env=server_env(), cwd=str(ws))
    return Client(params, read_timeout_seconds=120)


@contextmanager
def http_server(ws: Path, *args: str, timeout: float = 60.0) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """``caramba mcp serve --http`` on a free loopback port: yields (url, process, stderr file)."""
    port = free_port()
    err = ws / f".mcp-http-{port}.stderr"
    with err.open("wb") as ferr:
        proc = subprocess.Popen([sys.executable, "-m", "caramba", "mcp", "serve", "--http", "--port", str(port),
                                 "--workspace", str(ws), *args],
                                stdout=subprocess.DEVNULL, stderr=ferr, env=server_env(), cwd=ws)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"MCP HTTP server exited {proc.returncode}: {err.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"MCP HTTP server did not listen: {err.read_text()}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp", proc, err
    finally:
        stop_process(proc)


def http_client(url: str, token: str | None, headers: dict[str, str] | None = None) -> Client:
    """An SDK client over streamable HTTP sending ``Authorization: Bearer <token>``."""
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    transport = streamable_http_client(url, http_client=create_mcp_http_client(headers=h))
    return Client(transport, read_timeout_seconds=120)


def token_of(ws: Path) -> str:
    return (ws / ".caramba" / "mcp_token").read_text().strip()


def structured(result: Any) -> dict[str, Any]:
    """The structured content of a successful tool result (fails the test with the error text)."""
    if result.is_error:
        raise AssertionError("tool failed: " + " ".join(getattr(c, "text", "") for c in result.content))
    assert result.structured_content is not None
    return result.structured_content


def error_text(result: Any) -> str:
    assert result.is_error, f"expected an error result, got {result.structured_content}"
    return " ".join(getattr(c, "text", "") for c in result.content)
