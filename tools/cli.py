"""``caramba mcp serve``: run caramba's MCP server.

    caramba mcp serve --stdio                          # for Claude Desktop / IDE clients
    caramba mcp serve --http --port 8765               # http://127.0.0.1:8765/mcp, bearer token

Keep module-level imports light (typer, rich): heavy libraries load inside commands.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from caramba.engine.errors import CarambaError


def register(app: typer.Typer) -> None:
    """Add this component's commands to the root app."""
    mcp_app = typer.Typer(help="caramba's MCP server (tools for agents and assistants).", no_args_is_help=True)

    @mcp_app.command("serve")
    def serve(
        stdio: Annotated[bool, typer.Option("--stdio", help="serve one client on stdin/stdout")] = False,
        http: Annotated[bool, typer.Option("--http", help="serve streamable HTTP at http://HOST:PORT/mcp")] = False,
        host: Annotated[Optional[str], typer.Option(help="HTTP bind address (default 127.0.0.1 or mcp.host)")] = None,
        port: Annotated[Optional[int], typer.Option(help="HTTP port (default 8765 or mcp.port)")] = None,
        workspace: Annotated[Optional[Path], typer.Option(help="workspace root (default $CARAMBA_WORKSPACE or cwd)")] = None,
        allow_python_impl: Annotated[bool, typer.Option("--allow-python-impl",
                                                        help="let submitted manifests use python: impls")] = False,
        max_jobs: Annotated[int, typer.Option(help="runs active at once")] = 4,
        allow_origin: Annotated[Optional[list[str]], typer.Option(help="extra allowed Origin (repeatable)")] = None,
        no_auth: Annotated[bool, typer.Option("--no-auth", help="HTTP without a token (loopback only)")] = False,
    ) -> None:
        """Serve caramba's tools over MCP (stdio or streamable HTTP)."""
        from caramba.tools.transports import logs_to_stderr

        logs_to_stderr()
        if stdio == http:
            raise CarambaError("choose exactly one transport", fix="pass --stdio or --http")
        from caramba.tools.server import ServerOptions, build_server

        server, deps = build_server(ServerOptions(workspace=workspace, allow_python_impl=allow_python_impl,
                                                  max_jobs=max_jobs))
        if stdio:
            from caramba.tools.transports import serve_stdio

            serve_stdio(server)
            return
        from caramba.tools.auth import check_bind, load_or_create_token
        from caramba.tools.transports import listen_socket, serve_http

        cfg = deps.workspace.config().mcp
        bind = host or cfg.host
        bind_port = port or cfg.port or 8765
        token = None if no_auth else load_or_create_token(deps.workspace)
        check_bind(bind, token)
        sock = listen_socket(bind, bind_port)  # a busy port is an error here, before "serving" is printed
        if token is not None and token.source == "generated":
            # printed once, here, on first start; never through logging
            print(f"caramba mcp: generated bearer token (stored in {deps.workspace.state_dir / 'mcp_token'}):\n"
                  f"  {token.value}", file=sys.stderr, flush=True)
        print(f"caramba mcp: serving http://{bind}:{bind_port}/mcp (workspace {deps.workspace.root}, "
              f"{'no auth' if token is None else 'bearer token required'})", file=sys.stderr, flush=True)
        serve_http(server, sock=sock, token=None if token is None else token.value,
                   allowed_origins=tuple(allow_origin or ()))

    app.add_typer(mcp_app, name="mcp")
