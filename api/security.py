"""HTTP security of the REST API: bearer token, Origin check, CORS, request size limit.

The policy is the MCP HTTP server's (:mod:`caramba.tools.auth`), with the API's own token:

1. ``$CARAMBA_API_TOKEN``;
2. ``api.token`` in ``caramba.yml``;
3. ``<workspace>/.caramba/api_token`` (0600), generated on the first ``caramba serve``.

* Every ``/api/*`` route except ``/api/health`` depends on :func:`require_token`
  (``Authorization: Bearer <token>``, constant-time compare, 401 otherwise). The OpenAPI
  page ``/docs`` shows the scheme, so "Authorize" there works.
* The dashboard's HTML/JS/CSS and the OpenAPI docs carry no data and are public; the
  page sends the token (read once from the URL fragment ``#token=…``) on every call.
* :class:`OriginAndSizeMiddleware` answers 403 to a request whose ``Origin`` is neither
  loopback nor an ``--allow-origin`` (a foreign web page cannot drive the API through the
  user's browser) and 413 to a body larger than the limit (declared or streamed).
* CORS stays closed unless ``--allow-origin`` names origins (then only those get CORS
  headers).
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from caramba.tools.auth import Token, asgi_headers, json_reply, load_or_create_token, origin_allowed
from caramba.workspace import Workspace

API_TOKEN_ENV = "CARAMBA_API_TOKEN"
API_TOKEN_FILE = "api_token"

_bearer = HTTPBearer(auto_error=False, description="the token printed by `caramba serve` "
                                                   "(stored in <workspace>/.caramba/api_token)")


def api_token(ws: Workspace) -> Token:
    """The API's bearer token (see the module docstring); generated on first use."""
    return load_or_create_token(ws, env_var=API_TOKEN_ENV, file_name=API_TOKEN_FILE, section="api")


def require_token(request: Request,
                  creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
    """FastAPI dependency: 401 unless the request carries the server's bearer token."""
    expected: bytes | None = request.app.state.token
    if expected is None:
        return  # --no-auth (loopback only)
    given = creds.credentials.encode() if creds is not None else b""
    if not given or not hmac.compare_digest(given, expected):
        raise HTTPException(
            status_code=401,
            detail={"error": "invalid_token", "message": "missing or invalid bearer token",
                    "fix": "send 'Authorization: Bearer <token>'; the token is in "
                           "<workspace>/.caramba/api_token (or $CARAMBA_API_TOKEN)"},
            headers={"WWW-Authenticate": 'Bearer realm="caramba"'})


class OriginAndSizeMiddleware:
    """ASGI middleware: 403 for a foreign ``Origin``, 413 for an oversized request body."""

    def __init__(self, app: Any, *, max_body_bytes: int, allowed_origins: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.allowed_origins = allowed_origins

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = asgi_headers(scope)
        origin = headers.get("origin")
        if origin is not None and origin != "null" and not origin_allowed(origin, self.allowed_origins):
            await json_reply(send, 403, {"error": "forbidden_origin", "message": f"Origin '{origin}' is not allowed",
                                    "fix": "use the dashboard served by this server, or start it with "
                                           "--allow-origin ORIGIN"})
            return
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await json_reply(send, 413, _too_large(self.max_body))
            return
        # Read the whole body first (bounded by the limit), then replay it to the app: a
        # chunked upload without Content-Length is refused as soon as it passes the limit.
        chunks: list[bytes] = []
        seen = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the app sees an empty body
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > self.max_body:
                await json_reply(send, 413, _too_large(self.max_body))
                return
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: disconnect notifications (SSE)

        await self.app(scope, replay, send)


def _too_large(limit: int) -> dict[str, str]:
    return {"error": "request_too_large", "message": f"request body is larger than {limit} bytes",
            "fix": "send a smaller manifest (split it with !include files in the workspace) or "
                   "start the server with a larger --max-body"}


