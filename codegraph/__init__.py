"""caramba.codegraph: source code → a queryable graph in FalkorDB.

* :mod:`~caramba.codegraph.server` — the FalkorDB server (embedded in the workspace, or
  external via ``falkordb.url``); shared with :mod:`caramba.memory`.
* :mod:`~caramba.codegraph.parse` / :mod:`~caramba.codegraph.manifests` — Python (``ast``,
  never executed) and YAML manifests → facts.
* :mod:`~caramba.codegraph.resolve` — names → qualified names (imports, scopes, MRO).
* :mod:`~caramba.codegraph.store` / :mod:`~caramba.codegraph.sync` — schema, batched writes,
  incremental copy-and-swap sync.
* :mod:`~caramba.codegraph.queries` — read-only questions (what the MCP tools expose).
* :mod:`~caramba.codegraph.cli` — ``caramba db …`` and ``caramba codegraph …``.
"""
