"""The code graph as the tools see it: one FalkorDB client per server, sandboxed sync roots.

``CodeGraphTools(workspace)`` connects lazily to the workspace's FalkorDB (the embedded
server, started on first use, or ``falkordb.url``) and answers with
:mod:`caramba.codegraph.queries`. It is free of MCP types: the MCP tools call it in a
worker thread, and ``bench/mcp.py`` calls it directly as the no-protocol baseline.

    cg = CodeGraphTools(Workspace("."))
    cg.sync(".", graph="caramba")
    cg.find_symbol("JobManager", graph="caramba")
"""

from __future__ import annotations

import threading
from typing import Any

from caramba.tools.sandbox import Sandbox
from caramba.workspace import Workspace


class CodeGraphTools:
    """Sync and query code graphs of one workspace (thread-safe: one shared client)."""

    def __init__(self, workspace: Workspace, sandbox: Sandbox | None = None) -> None:
        self.workspace = workspace
        self.sandbox = sandbox or Sandbox(workspace)
        self._db: Any = None
        self._lock = threading.Lock()

    def db(self) -> Any:
        with self._lock:
            if self._db is None:
                from caramba.codegraph.server import connect

                self._db = connect(self.workspace)
            return self._db

    def graph(self, name: str | None) -> Any:
        from caramba.codegraph.queries import CodeGraph

        return CodeGraph.open(self.db(), name)

    def graphs(self) -> list[str]:
        from caramba.codegraph.queries import list_code_graphs

        return list_code_graphs(self.db())

    def sync(self, path: str = ".", *, graph: str | None = None) -> dict[str, Any]:
        """Index ``path`` (a folder of the workspace) into ``code:<graph>``, incrementally."""
        from caramba.codegraph.sync import sync_repository

        root = self.sandbox.resolve(path, must_exist=True)
        name = graph or (root.name if root != self.workspace.root else self.workspace.root.name)
        return sync_repository(root, db=self.db(), graph=name).to_dict()

    def find_symbol(self, name: str, *, graph: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        return self.graph(graph).find(name, limit=limit)

    def callers(self, symbol: str, *, graph: str | None = None) -> list[dict[str, Any]]:
        return self.graph(graph).callers(symbol)

    def callees(self, symbol: str, *, graph: str | None = None) -> dict[str, Any]:
        return self.graph(graph).callees(symbol)

    def subclasses(self, cls: str, *, graph: str | None = None, transitive: bool = False) -> list[dict[str, Any]]:
        return self.graph(graph).subclasses(cls, transitive=transitive)

    def layer_usage(self, type_name: str, *, graph: str | None = None) -> list[dict[str, Any]]:
        return self.graph(graph).layer_usage(type_name)

    def query(self, cypher: str, *, graph: str | None = None, limit: int = 1000) -> dict[str, Any]:
        return self.graph(graph).query(cypher, limit=limit)
