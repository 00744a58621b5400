"""``caramba serve``: the REST API and the live run dashboard.

    caramba serve                         # http://127.0.0.1:8080/ (token printed on stderr)
    caramba serve --port 9000 --workspace ~/research
    caramba serve --host 0.0.0.0          # needs CARAMBA_API_TOKEN or api.token (no generated token)

Open the printed ``…/dashboard/#token=…`` link once: the page keeps the token for the
browser tab. Other programs send ``Authorization: Bearer <token>``.

Keep module-level imports light (typer, rich): heavy libraries load inside commands.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

DEFAULT_PORT = 8080


def register(app: typer.Typer) -> None:
    """Add this component's commands to the root app."""

    @app.command("serve")
    def serve(
        host: Annotated[Optional[str], typer.Option(help="bind address (default 127.0.0.1 or api.host)")] = None,
        port: Annotated[Optional[int], typer.Option(help=f"port (default {DEFAULT_PORT} or api.port)")] = None,
        workspace: Annotated[Optional[Path], typer.Option(help="workspace root (default $CARAMBA_WORKSPACE or cwd)")] = None,
        max_jobs: Annotated[int, typer.Option(help="runs active at once")] = 4,
        allow_origin: Annotated[Optional[list[str]], typer.Option(
            help="extra browser origin allowed to call the API, with CORS (repeatable); default: none")] = None,
        max_body: Annotated[int, typer.Option(help="largest request body in bytes")] = 1024 * 1024,
        allow_python_impl: Annotated[bool, typer.Option("--allow-python-impl",
                                                        help="let submitted manifests use python: impls")] = False,
        no_auth: Annotated[bool, typer.Option("--no-auth", help="no bearer token (loopback binds only)")] = False,
    ) -> None:
        """Serve the REST API (OpenAPI at /docs) and the live run dashboard."""
        from caramba.api.app import ApiOptions, create_app
        from caramba.api.security import API_TOKEN_ENV, api_token
        from caramba.tools.auth import check_bind
        from caramba.tools.transports import listen_socket, run_uvicorn
        from caramba.workspace import Workspace

        ws = Workspace(workspace)
        cfg = ws.config().api
        bind = host or cfg.host
        bind_port = port or cfg.port or DEFAULT_PORT
        token = None if no_auth else api_token(ws)
        check_bind(bind, token, env_var=API_TOKEN_ENV, key="api.token")
        app = create_app(ApiOptions(workspace=ws.root, token=None if token is None else token.value,
                                    allow_python_impl=allow_python_impl, max_jobs=max_jobs,
                                    allowed_origins=tuple(allow_origin or ()), max_body_bytes=max_body))
        sock = listen_socket(bind, bind_port)  # a busy port is an error here, before the links are printed
        shown = "127.0.0.1" if bind in ("0.0.0.0", "::") else bind
        link = f"http://{shown}:{bind_port}/dashboard/"
        if token is not None and token.source in ("generated", "file"):
            # a local token file: print the ready-to-open link (stderr, never logging)
            link += f"#token={token.value}"
        elif token is not None:
            link += "#token=<your token>"  # a managed secret (env/config) is never printed
        print(f"caramba serve: API http://{shown}:{bind_port}/api (docs /docs), workspace {ws.root}\n"
              f"  dashboard: {link}", file=sys.stderr, flush=True)
        run_uvicorn(app, sock)
