"""MCP prompts: reusable research requests a client can offer its user.

Each prompt embeds the manifest (a workspace file read through the sandbox, or
``preset:<name>`` as the tools accept) and names the tools the model should use, so the
conversation that follows stays grounded in validated manifests and real runs rather than
guesses.

:func:`arguments_middleware` checks a ``prompts/get`` request against the prompt's declared
arguments first: an unknown prompt, a missing required argument or an argument the prompt
does not take is an ``INVALID_PARAMS`` error naming the prompt's arguments (the SDK would
answer a bare "Internal server error").
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS
from pydantic import Field

from caramba.engine.errors import CarambaError
from caramba.tools import catalog as cat
from caramba.tools.common import ToolDeps


def arguments_middleware(server: MCPServer) -> Any:
    """Server middleware: refuse a ``prompts/get`` whose name or arguments do not fit."""

    async def middleware(ctx: Any, call_next: Any) -> Any:
        if ctx.method == "prompts/get" and isinstance(ctx.params, dict):
            name, given = ctx.params.get("name"), dict(ctx.params.get("arguments") or {})
            prompts = {p.name: p for p in await server.list_prompts()}
            prompt = prompts.get(name)
            if prompt is None:
                raise MCPError(code=INVALID_PARAMS, message=f"no prompt named {name!r}\n  fix: prompts/list "
                               f"shows them: {', '.join(sorted(prompts))}")
            args = prompt.arguments or []
            usage = ", ".join(f"{a.name}{'' if a.required else ' (optional)'}" for a in args) or "no arguments"
            missing = [a.name for a in args if a.required and a.name not in given]
            unknown = sorted(set(given) - {a.name for a in args})
            if missing or unknown:
                what = "; ".join(filter(None, [f"missing {', '.join(missing)}" if missing else "",
                                               f"unknown {', '.join(unknown)}" if unknown else ""]))
                raise MCPError(code=INVALID_PARAMS,
                               message=f"prompt '{name}' arguments: {what}\n  fix: it takes {usage}")
        return await call_next(ctx)

    return middleware


def register(server: MCPServer, deps: ToolDeps) -> None:
    """Add the prompts."""

    def manifest_text(path: str) -> str:
        try:
            if path.startswith("preset:"):
                return cat.preset_path(deps.workspace, path.removeprefix("preset:")).read_text()
            text, _, truncated = deps.sandbox.read_text(path)
        except CarambaError as e:  # the SDK would hide the message of any other exception
            raise MCPError(code=INVALID_PARAMS, message=e.render()) from e
        return text + ("\n# … (truncated)" if truncated else "")

    @server.prompt(title="Propose an ablation")
    def propose_ablation(
        manifest: Annotated[str, Field(description="manifest path in the workspace, or 'preset:<name>'")],
        question: Annotated[str, Field(description="what the ablation should answer")] = "which component matters most",
    ) -> str:
        """Design an ablation study of a manifest, as a new manifest."""
        return (
            f"Here is the caramba manifest `{manifest}`:\n\n```yaml\n{manifest_text(manifest)}\n```\n\n"
            f"Propose an ablation that answers: {question}.\n"
            "Change one factor per run (keep data, steps, seeds and optimizer identical; set "
            "`apples_to_apples: true`), repeat each run over at least 3 seeds, and write the result as "
            "one new manifest. Check it with `validate_manifest` and `dry_run_manifest` (compare "
            "parameter counts), then save it with `write_manifest` under manifests/. Use "
            "`layer_catalog` for the exact layer names and config fields."
        )

    @server.prompt(title="Explain a run")
    def explain_run(job_id: Annotated[str, Field(description="job id of a finished run")]) -> str:
        """Summarise a finished run's results and what to try next."""
        try:
            deps.jobs.get(job_id)  # an unknown id is refused here, not discovered by the model later
        except CarambaError as e:
            raise MCPError(code=INVALID_PARAMS, message=e.render()) from e
        return (
            f"Fetch the results of caramba run `{job_id}` with `get_results`, look at its loss curve "
            "with `get_artifact` (artifacts/loss_curve.png) and summarise: final metrics, verification "
            "verdicts, anything unstable in training. If it has sibling runs, use `compare_runs` and "
            "report mean ± 95% CI. End with one concrete next experiment as a manifest change."
        )

    @server.prompt(title="Review a manifest")
    def review_manifest(manifest: Annotated[str, Field(description="manifest path in the workspace, or 'preset:<name>'")]) -> str:
        """Review a manifest for mistakes and comparability before running it."""
        return (
            f"Review the caramba manifest `{manifest}`:\n\n```yaml\n{manifest_text(manifest)}\n```\n\n"
            "Run `validate_manifest` and `dry_run_manifest`. Point out mismatched widths, unfair "
            "comparisons between runs (different steps, data or seeds), missing verification gates "
            "and anything the plan shows that the author probably did not intend."
        )
