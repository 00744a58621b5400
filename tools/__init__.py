"""caramba.tools: the MCP server (``caramba mcp serve``) and the background-job manager.

Start with :mod:`caramba.tools.server` (tool groups, resources, prompts),
:mod:`caramba.tools.jobs` (runs as subprocesses, reusable by the REST API) and
:mod:`caramba.tools.sandbox` (every client path stays inside the workspace).
"""
