"""What every tool group shares: the server's dependencies and the error convention.

Error convention (one per boundary, STYLE.md): the engine, code graph and memory raise
:class:`~caramba.engine.errors.CarambaError` with an actionable message. ``@tool_errors``
turns that into the SDK's :class:`ToolError`, so the client receives an ``isError``
result whose text is exactly the engine's message (file, line, YAML path, fix). Any
other exception is a bug: the SDK logs it on the server (stderr) and the client gets a
generic error, never a traceback.

Blocking work (loading manifests, reading files, graph queries) runs in a worker thread
(``anyio.to_thread``) so one slow call does not stall the other clients of the server.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

import anyio
from mcp.server.mcpserver.exceptions import ToolError

from caramba.engine.errors import CarambaError
from caramba.tools.jobs import JobManager
from caramba.tools.sandbox import Sandbox
from caramba.workspace import Workspace

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class ToolDeps:
    """The server-wide objects a tool group needs."""

    workspace: Workspace
    sandbox: Sandbox
    jobs: JobManager
    allow_python_impl: bool = False
    #: (peer, request id) → job id of ``wait_run`` calls, so an explicit
    #: ``notifications/cancelled`` for one of them can cancel its job.
    waiting: dict[tuple[str, str], str] = field(default_factory=dict)


def tool_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Re-raise ``CarambaError`` as ``ToolError`` carrying the actionable message."""
    if not inspect.iscoroutinefunction(fn):
        raise TypeError(f"{fn.__name__}: tool functions must be async (use run_blocking for blocking work)")

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except CarambaError as e:  # ManifestError included: render() lists every issue
            raise ToolError(e.render()) from e

    return wrapper


async def run_blocking(fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """Run a blocking callable in a worker thread."""
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))
