"""caramba's REST API and live run dashboard (``caramba serve``).

``create_app`` (:mod:`caramba.api.app`) builds a FastAPI app that reuses the MCP server's
machinery — one job manager, the workspace sandbox, the manifest intake, result readers —
and serves the dashboard (``api/static``: plain HTML + ES modules, SVG charts, no build
step). See the README section "Dashboard and REST API" and docs/internals.md.
"""
