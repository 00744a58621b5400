"""Serving the MCP server over stdio or streamable HTTP.

* **stdio**: stdout carries protocol messages only. The SDK's ``stdio_server`` points
  fd 1 at stderr while serving (stray prints of libraries and children miss the wire);
  we also send Python logging to stderr before anything is imported.
* **HTTP**: the SDK's streamable-HTTP Starlette app at ``/mcp``, wrapped in
  :class:`~caramba.tools.auth.BearerAndOriginMiddleware` and served by uvicorn. Binds
  127.0.0.1 unless told otherwise; a non-loopback bind needs a token.

Every caramba server (``mcp serve --http``, ``serve``, ``a2a serve``) binds its socket with
:func:`listen_socket` *before* announcing its address and hands it to uvicorn
(:func:`run_uvicorn`), so a busy port, a port out of range or an address this machine does
not have is one ``error: … fix: …`` line (exit 2) instead of a uvicorn log or traceback
after a "serving …" line that was not true.
"""

from __future__ import annotations

import errno
import logging
import socket
import sys
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

from caramba.engine.errors import CarambaError
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


def listen_socket(host: str, port: int, *, option: str = "--port") -> socket.socket:
    """A bound TCP socket for ``host:port`` (SO_REUSEADDR, as uvicorn binds), or a
    ``CarambaError`` saying what is wrong with the address and how to fix it."""
    if not 1 <= port <= 65535:
        raise CarambaError(f"port {port} is out of range", fix=f"pass {option} with a number from 1 to 65535")
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as e:
        raise CarambaError(f"cannot bind to host '{host}': {e.strerror}",
                           fix="pass --host 127.0.0.1 (the default) or an address of this machine") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise CarambaError(f"port {port} on {host} is already in use",
                               fix=f"stop the program using it, or pick another port with {option}") from None
        raise CarambaError(f"cannot bind to {host}:{port}: {e.strerror}",
                           fix="pass --host 127.0.0.1 (the default) or an address of this machine, "
                               "and a port you may open (>= 1024 without root)") from None
    sock.set_inheritable(True)
    return sock


def run_uvicorn(app: Any, sock: socket.socket, *, log_level: str = "warning", **config: Any) -> None:
    """Serve ``app`` with uvicorn on the already bound ``sock`` until interrupted."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    cfg = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, **config)
    uvicorn.Server(cfg).run(sockets=[sock])


def serve_http(server: MCPServer, *, sock: socket.socket, token: str | None,
               allowed_origins: tuple[str, ...] = (), log_level: str = "warning") -> None:
    """Serve on ``http://host:port/mcp`` (``sock`` from :func:`listen_socket`) until interrupted."""
    host = sock.getsockname()[0]
    app = http_app(server, host=host, token=token, allowed_origins=allowed_origins)
    run_uvicorn(app, sock, log_level=log_level, lifespan="on")
