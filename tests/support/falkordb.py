"""A real embedded FalkorDB server per test, in the test's ``tmp_path`` workspace.

Use from any test module (memory, tools, codegraph)::

    from caramba.tests.support.falkordb import falkordb_workspace  # noqa: F401  (pytest fixture)

    def test_something(falkordb_workspace):
        ws, ep = falkordb_workspace            # Workspace, FalkorEndpoint (ep.host, ep.port)
        db = connect(ws)                       # caramba.codegraph.server.connect

The server starts in well under a second and is stopped (SHUTDOWN SAVE) when the test
ends, even if it failed. ``running_falkordb(root)`` is the same as a context manager.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from caramba.codegraph.server import FalkorEndpoint, ensure_falkordb, stop_falkordb
from caramba.workspace import Workspace


@contextmanager
def running_falkordb(root: Path) -> Iterator[tuple[Workspace, FalkorEndpoint]]:
    """Start the embedded server of a workspace at ``root``; stop it on exit."""
    root.mkdir(parents=True, exist_ok=True)
    ws = Workspace(root)
    ep = ensure_falkordb(ws)
    try:
        yield ws, ep
    finally:
        stop_falkordb(ws)


@pytest.fixture
def falkordb_workspace(tmp_path: Path) -> Iterator[tuple[Workspace, FalkorEndpoint]]:
    """(workspace, endpoint) of a fresh embedded FalkorDB under ``tmp_path / 'ws'``."""
    with running_falkordb(tmp_path / "ws") as pair:
        yield pair
