"""HTTP security: the bearer token, the Origin check and the bind policy.

Token, in order of precedence:

1. ``$CARAMBA_MCP_TOKEN``;
2. ``mcp.token`` in ``caramba.yml`` (for a deployment that manages its own secret);
3. ``<workspace>/.caramba/mcp_token`` (mode 0600), generated on the first HTTP start.

A freshly generated token is printed once (on stderr, by the CLI, not through logging)
so the user can paste it into the client; it is never logged afterwards. It serves loopback
binds only: :func:`check_bind` refuses a non-loopback address unless the token is 1 or 2.

``BearerAndOriginMiddleware`` wraps the SDK's Starlette app. Every HTTP request must carry
``Authorization: Bearer <token>`` (constant-time compared; 401 otherwise) and, when it has
an ``Origin`` header (browsers always send one), that origin must be allowed (403
otherwise) — a web page on another site cannot drive the server through the user's
browser. The SDK additionally checks ``Host`` (DNS rebinding).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import secrets
from dataclasses import dataclass
from typing import Any

from caramba.engine.errors import CarambaError
from caramba.workspace import Workspace

TOKEN_ENV = "CARAMBA_MCP_TOKEN"
TOKEN_FILE = "mcp_token"
LOCAL_ORIGINS = ("http://127.0.0.1", "http://localhost", "http://[::1]")


class AuthError(CarambaError):
    """A server set-up that would be unsafe (non-local bind without a token, …)."""


@dataclass(frozen=True)
class Token:
    value: str
    source: str  # 'env', 'config', 'file' or 'generated'


def load_or_create_token(ws: Workspace, *, env_var: str = TOKEN_ENV, file_name: str = TOKEN_FILE,
                         section: str = "mcp") -> Token:
    """The server token (see the module docstring); creates the token file if needed.

    The REST API keeps a parallel token: ``env_var="CARAMBA_API_TOKEN"``,
    ``file_name="api_token"``, ``section="api"`` (``api.token`` in ``caramba.yml``).
    """
    env = os.environ.get(env_var)
    if env:
        return Token(env, "env")
    cfg = getattr(ws.config(), section).token
    if cfg:
        return Token(cfg, "config")
    path = ws.state_dir / file_name
    if path.exists():
        value = path.read_text().strip()
        if value:
            return Token(value, "file")
    value = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{file_name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    os.replace(tmp, path)
    return Token(value, "generated")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: Token | None, *, env_var: str = TOKEN_ENV, key: str = "mcp.token") -> None:
    """Refuse to listen beyond this machine without a token the operator chose.

    A loopback bind may use any token (or none, with ``--no-auth``). Any other address needs a
    token set in ``env_var`` or ``key`` in ``caramba.yml``. The token file caramba generates in
    the workspace is a convenience for local clients, not a secret meant for a network. MCP and
    the REST API apply the same rule.
    """
    if is_loopback(host):
        return
    fix = f"set {env_var} or {key} in caramba.yml (a secret you manage), or bind 127.0.0.1"
    if token is None:
        raise AuthError(f"refusing to serve on {host} (not a loopback address) without a bearer token", fix=fix)
    if token.source in ("generated", "file"):
        raise AuthError(f"refusing to serve on {host} (not a loopback address) with the token caramba generated "
                        "in the workspace", fix=fix)


def origin_allowed(origin: str, extra: tuple[str, ...] = ()) -> bool:
    """Loopback origins on any port, plus the exact ``extra`` origins."""
    if origin in extra:
        return True
    for base in LOCAL_ORIGINS:
        if origin == base or origin.startswith(base + ":"):
            rest = origin[len(base) + 1:]
            return origin == base or rest.isdigit()
    return False


class BearerAndOriginMiddleware:
    """ASGI middleware: 403 for a foreign Origin, 401 without the right bearer token."""

    def __init__(self, app: Any, token: str | None, allowed_origins: tuple[str, ...] = ()) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.allowed_origins = allowed_origins

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = asgi_headers(scope)
        origin = headers.get("origin")
        if origin is not None and not origin_allowed(origin, self.allowed_origins):
            await json_reply(send, 403, {"error": "forbidden_origin",
                                     "message": f"Origin '{origin}' is not allowed",
                                     "fix": "connect from a local client, or add the origin with --allow-origin"})
            return
        if self.token is not None:
            auth = headers.get("authorization", "")
            scheme, _, given = auth.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token):
                await json_reply(send, 401, {"error": "invalid_token",
                                         "message": "missing or invalid bearer token",
                                         "fix": "send 'Authorization: Bearer <token>' (the token is in "
                                                "<workspace>/.caramba/mcp_token)"},
                             extra=[(b"www-authenticate", b'Bearer realm="caramba"')])
                return
        await self.app(scope, receive, send)


def asgi_headers(scope: dict[str, Any]) -> dict[str, str]:
    """An ASGI HTTP scope's headers as a dict with lower-case names."""
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


async def json_reply(send: Any, status: int, body: dict[str, Any],
                     extra: list[tuple[bytes, bytes]] | None = None) -> None:
    """Send a small JSON response from ASGI middleware (MCP transport and REST API)."""
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()), *(extra or [])]})
    await send({"type": "http.response.body", "body": data})
