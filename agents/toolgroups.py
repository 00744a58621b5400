"""The MCP tool groups a persona may be granted, by tool name.

These are the tools of caramba's MCP server (``caramba.tools.server``); a persona's
``tools: [manifests, results]`` becomes ADK's ``McpToolset(tool_filter=[...])`` allowlist.
``tests/test_agents_personas.py`` checks this table against the real server's tool list.
"""

from __future__ import annotations

GROUPS: dict[str, tuple[str, ...]] = {
    "manifests": ("list_presets", "get_preset", "layer_catalog", "validate_manifest",
                  "dry_run_manifest", "write_manifest"),
    "runs": ("run_manifest", "run_status", "wait_run", "cancel_run", "resume_run", "list_runs"),
    "results": ("get_results", "get_artifact", "compare_runs"),
    "codegraph": ("codegraph_sync", "sync_status", "wait_sync", "cancel_sync", "list_syncs",
                  "codegraph_query", "find_symbol", "callers", "callees", "subclasses", "layer_usage"),
    "memory": ("memory_add", "memory_search", "rag_index", "rag_search"),
    "files": ("read_file", "list_files", "search_files"),
}
