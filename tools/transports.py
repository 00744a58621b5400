"""Serving the MCP server over stdio or streamable HTTP.

* **stdio**: stdout carries protocol messages only. The SDK's ``stdio_server`` points
  fd 1 at stderr while serving (stray prints of libraries and children miss the wire);
  we also send Python logging to stderr before anything is imported.
* **HTTP**: the SDK's streamable-HTTP Starlette app at ``/mcp``, wrapped in
  :class:`~caramba.tools.auth.BearerAndOriginMiddleware` and served by uvicorn. Binds
  127.0.0.1 unless told otherwise; a non-loopback bind needs a token.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

from caramba.tools.auth import LOCAL_ORIGINS, BearerAndOriginMiddleware, is_loopback


def logs_to_stderr(level: int = logging.WARNING) -> None:
    """Route the root logger to stderr (never stdout, which is the stdio wire)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)


def serve_stdio(server: MCPServer) -> None:
    """Serve one client on stdin/stdout until it closes the pipe."""
    anyio.run(server.run_stdio_async)


def http_app(server: MCPServer, *, host: str, token: str | None,
             allowed_origins: tuple[str, ...] = (), path: str = "/mcp") -> Any:
    """The ASGI app: the SDK's streamable-HTTP app behind bearer + Origin checks."""
    origins = [f"{o}:*" for o in LOCAL_ORIGINS] + list(LOCAL_ORIGINS) + list(allowed_origins)
    if is_loopback(host):
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost"],
            allowed_origins=origins)
    else:
        # A Host check needs the public name, which we cannot know; the bearer token and
        # our Origin check protect a non-local bind.
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    app = server.streamable_http_app(streamable_http_path=path, transport_security=security, host=host)
    return BearerAndOriginMiddleware(app, token, allowed_origins)


def serve_http(server: MCPServer, *, host: str, port: int, token: str | None,
               allowed_origins: tuple[str, ...] = (), log_level: str = "warning") -> None:
    """Serve on ``http://host:port/mcp`` until interrupted."""
    import uvicorn

    app = http_app(server, host=host, token=token, allowed_origins=allowed_origins)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                            lifespan="on")
    uvicorn.Server(config).run()
