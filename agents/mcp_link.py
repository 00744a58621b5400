"""The agents' connection to caramba's MCP server.

Agents reach the engine only through caramba's MCP tools — the same tools external
assistants use. A process starts the server *embedded*: the real streamable-HTTP app of
:mod:`caramba.tools.transports` served by uvicorn in a background thread on
``127.0.0.1:<free port>``, protected by a fresh random bearer token. Then

* every persona gets an ADK ``McpToolset`` (:meth:`McpLink.toolset`) over streamable HTTP
  with that persona's allowlist (``tool_filter``) and long timeouts (ADK's default of
  5 s is far too short for ``wait_run``);
* the process's own pipeline steps (validate, dry-run, run, read results) call the same
  server through the MCP SDK client (:meth:`McpLink.call`), recorded in the transcript.

::

    async with McpLink(workspace) as link:
        ok, data = await link.call("validate_manifest", {"text": yaml_text})
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from typing import Any

from caramba.engine.errors import CarambaError
from caramba.workspace import Workspace

# ADK's MCP client would otherwise look for Google Cloud client certificates (and probe
# the GCE metadata server) before every connection; the server here is on loopback.
os.environ.setdefault("GOOGLE_API_USE_CLIENT_CERTIFICATE", "false")

CONNECT_TIMEOUT_S = 60.0
READ_TIMEOUT_S = 3600.0


class McpLinkError(CarambaError):
    """The embedded MCP server could not be started."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class McpLink:
    """An embedded caramba MCP server plus a client session to it."""

    def __init__(self, workspace: Workspace, *, allow_python_impl: bool = False) -> None:
        self.workspace = workspace
        self.allow_python_impl = allow_python_impl
        self.token = secrets.token_urlsafe(32)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._client: Any = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        import uvicorn

        from caramba.agents.logs import plain_library_logs
        from caramba.tools.server import ServerOptions, build_server
        from caramba.tools.transports import http_app

        plain_library_logs()  # before MCPServer() would install Rich tracebacks on the root logger
        server, _ = build_server(ServerOptions(workspace=self.workspace.root,
                                               allow_python_impl=self.allow_python_impl))
        app = http_app(server, host="127.0.0.1", token=self.token)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                access_log=False, lifespan="on", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="caramba-mcp", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise McpLinkError(f"caramba's MCP server did not start on 127.0.0.1:{self.port}",
                                   fix="run `caramba mcp serve --http` to see why it fails")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    async def __aenter__(self) -> "McpLink":
        from mcp import Client
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        self.start()
        transport = streamable_http_client(self.url, http_client=create_mcp_http_client(headers=self.headers))
        self._client = Client(transport, read_timeout_seconds=READ_TIMEOUT_S)
        await self._client.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self._client is not None:
                await self._client.__aexit__(None, None, None)
        finally:
            self.stop()

    # -- use ----------------------------------------------------------------------------
    def toolset(self, tool_names: list[str]) -> Any:
        """An ADK ``McpToolset`` limited to ``tool_names``."""
        from google.adk.tools.mcp_tool.mcp_session_manager import StreamableHTTPConnectionParams
        from google.adk.tools.mcp_tool.mcp_toolset import McpToolset

        params = StreamableHTTPConnectionParams(url=self.url, headers=self.headers,
                                                timeout=CONNECT_TIMEOUT_S, sse_read_timeout=READ_TIMEOUT_S)
        return McpToolset(connection_params=params, tool_filter=list(tool_names))

    async def call(self, name: str, arguments: dict[str, Any]) -> tuple[bool, Any]:
        """Call one tool: ``(True, structured result)`` or ``(False, error text)``."""
        result = await self._client.call_tool(name, arguments)
        if result.is_error:
            return False, " ".join(getattr(c, "text", "") for c in result.content)
        if result.structured_content is not None:
            return True, result.structured_content
        return True, " ".join(getattr(c, "text", "") for c in result.content)
