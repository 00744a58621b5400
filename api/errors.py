"""The REST API's error convention: every failure is JSON ``{error, message, fix}``.

The engine and the tools raise :class:`~caramba.engine.errors.CarambaError` with an
actionable message; :func:`install_handlers` turns it into a response with a status
that says whose fault it is:

============================  ======  =========================================
exception                     status  body
============================  ======  =========================================
``ManifestError``             422     ``error: invalid_manifest`` + ``issues``: every
                                      problem with file, line, column, YAML path,
                                      expected/found and fix
``NotFound`` / ``PresetError``  404   unknown run, preset, artifact
``SandboxError`` /            403     a path outside the workspace or in ``.caramba/``
``WorkspaceError``
``JobError``                  409     limit reached, wrong state (resume a running job)
other ``CarambaError``        400     the message and fix
============================  ======  =========================================

A request FastAPI itself refuses (malformed JSON, a wrong type, an unknown field or query
value) is 422 ``error: invalid_request`` with a one-line message per problem
(``body.path: Input should be a valid string``) and FastAPI's ``detail`` list kept as is.
No traceback ever reaches a client; anything that is not a ``CarambaError`` is a bug and
answers 500 ``internal_error`` (logged on the server).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from caramba.engine.errors import CarambaError, ManifestError

log = logging.getLogger("caramba.api")


class NotFound(CarambaError):
    """An unknown run, artifact or preset (HTTP 404)."""


class BadRequest(CarambaError):
    """A request the API refuses before calling anything (HTTP 400)."""


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def status_of(exc: CarambaError) -> int:
    """The HTTP status for a ``CarambaError`` (table in the module docstring)."""
    from caramba.tools.catalog import PresetError
    from caramba.tools.job_store import JobError
    from caramba.tools.sandbox import SandboxError
    from caramba.workspace import WorkspaceError

    if isinstance(exc, ManifestError):
        return 422
    if isinstance(exc, NotFound | PresetError):
        return 404
    if isinstance(exc, SandboxError | WorkspaceError):
        return 403
    if isinstance(exc, JobError):
        return 409
    return 400


def error_body(exc: CarambaError) -> dict[str, object]:
    """The JSON body of a ``CarambaError``."""
    if isinstance(exc, ManifestError):
        return {"error": "invalid_manifest", "message": exc.render(),
                "issues": [i.to_dict() for i in exc.issues], "fix": None}
    return {"error": _snake(type(exc).__name__), "message": exc.message, "fix": exc.fix}


def relative_files(issues: list[dict[str, Any]], root: Path) -> list[dict[str, Any]]:
    """Name manifest files in issues as clients do: relative to the workspace (in place)."""
    for issue in issues:
        f = issue.get("file")
        if isinstance(f, str) and f.startswith("/") and Path(f).is_relative_to(root):
            issue["file"] = str(Path(f).relative_to(root))
    return issues


def install_handlers(app: FastAPI) -> None:
    """Register the exception handlers on ``app``."""

    @app.exception_handler(CarambaError)
    async def caramba_error(request: Request, exc: CarambaError) -> JSONResponse:
        body = error_body(exc)
        if isinstance(body.get("issues"), list):
            relative_files(body["issues"], request.app.state.deps.workspace.root)  # type: ignore[arg-type]
        return JSONResponse(body, status_code=status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = exc.errors()
        lines = [f"the request body is not valid JSON ({e.get('ctx', {}).get('error', 'decode error')})"
                 if e.get("type") == "json_invalid" else
                 f"{'.'.join(str(part) for part in e.get('loc', ())) or 'request'}: {e.get('msg', 'invalid')}"
                 for e in problems]
        return JSONResponse({"error": "invalid_request", "message": "; ".join(lines) or "invalid request",
                             "fix": "see /docs (or /openapi.json) for this route's parameters and body",
                             "detail": jsonable_encoder(problems)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        body = exc.detail if isinstance(exc.detail, dict) else {
            "error": HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_"),
            "message": str(exc.detail), "fix": "see /docs for the routes and their parameters"}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def bug(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in the REST API", exc_info=exc)
        return JSONResponse({"error": "internal_error", "message": f"{type(exc).__name__} (see the server log)",
                             "fix": "this is a bug in caramba; please report it with the server log"},
                            status_code=500)
