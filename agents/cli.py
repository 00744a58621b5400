"""Commands of `caramba.agents` (added to the root `caramba` command by `register`).

::

    caramba brainstorm                                 # interactive team session (REPL)
    caramba brainstorm --topic "cheaper attention" --rounds 2 --model openai/gpt-4o-mini
    caramba a2a serve --port 9000                      # the research lead over A2A
    caramba chat --a2a http://127.0.0.1:9000           # terminal client of an A2A agent

Every command takes ``--model`` (repoint every persona to one LiteLLM model) and
``--api-base`` (an OpenAI-compatible server). ``caramba run manifest.yml`` runs
``type: process`` targets through the same code (see ``caramba.agents.targets``).

Keep module-level imports light (typer, rich): heavy libraries load inside commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:
    from caramba.agents.models import ModelOverride

ModelOpt = Annotated[Optional[str], typer.Option("--model", help="LiteLLM model for every persona (e.g. openai/gpt-4o-mini)")]
ApiBaseOpt = Annotated[Optional[str], typer.Option("--api-base", help="OpenAI-compatible endpoint for --model")]
WorkspaceOpt = Annotated[Optional[Path], typer.Option("--workspace", help="workspace root (default $CARAMBA_WORKSPACE or cwd)")]


def _team(pairs: list[str] | None) -> dict[str, str]:
    from caramba.engine.errors import CarambaError

    team: dict[str, str] = {}
    for p in pairs or []:
        role, sep, persona = p.partition("=")
        if not sep or not role or not persona:
            raise CarambaError(f"--team '{p}' is not role=persona", fix="e.g. --team lead=research_lead --team claude=claude")
        team[role.strip()] = persona.strip()
    return team


def _override(model: str | None, api_base: str | None) -> "ModelOverride | None":
    """``--model`` / ``--api-base`` → a ``ModelOverride`` (None: each persona's own model).

    ``--api-base`` alone would be ignored (the personas keep their own providers), so it
    is refused instead of silently doing nothing."""
    from caramba.agents.models import ModelOverride
    from caramba.engine.errors import CarambaError

    if api_base and not model:
        raise CarambaError(f"--api-base {api_base} was given without --model",
                           fix=f"name the model served there, e.g. --model openai/<model name> --api-base {api_base} "
                               "(or set llm.model and llm.api_base in caramba.yml)")
    return ModelOverride(model, api_base) if model else None


def register(app: typer.Typer) -> None:
    """Add this component's commands to the root app."""
    from caramba.engine import cli_run

    def handler(manifest, target, *, run_id=None, argv=None):  # type: ignore[no-untyped-def]
        from caramba.agents.targets import run_process_target

        run_process_target(manifest, target, run_id=run_id, argv=argv)

    cli_run.process_handler = handler

    @app.command("brainstorm")
    def brainstorm(
        topic: Annotated[Optional[str], typer.Option(help="discuss this and end with ranked proposals (non-interactive)")] = None,
        rounds: Annotated[int, typer.Option(help="contribution rounds (with --topic)")] = 1,
        team: Annotated[Optional[list[str]], typer.Option("--team", help="role=persona (repeatable); default: the full team")] = None,
        model: ModelOpt = None,
        api_base: ApiBaseOpt = None,
        max_llm_calls: Annotated[Optional[int], typer.Option(help="budget: model calls")] = None,
        max_tokens: Annotated[Optional[int], typer.Option(help="budget: prompt + completion tokens")] = None,
        max_cost_usd: Annotated[Optional[float], typer.Option(help="budget: USD (models must be in LiteLLM's price table)")] = None,
        max_wall_s: Annotated[Optional[float], typer.Option(help="budget: seconds of wall-clock time")] = None,
        workspace: WorkspaceOpt = None,
    ) -> None:
        """A team brainstorm: interactive REPL, or --topic/--rounds with ranked manifest proposals."""
        from caramba.agents.session import ProcessSpec, run_process
        from caramba.workspace import Workspace

        process: dict[str, object] = {"type": "brainstorm", "topic": topic, "rounds": rounds}
        limits = {"max_llm_calls": max_llm_calls, "max_tokens": max_tokens, "max_cost_usd": max_cost_usd,
                  "max_wall_s": max_wall_s}
        if any(v is not None for v in limits.values()):
            process["budget"] = {k: v for k, v in limits.items() if v is not None}
        result = run_process(ProcessSpec("brainstorm", "brainstorm", _team(team), process, where="brainstorm"),
                             workspace=Workspace(workspace), override=_override(model, api_base))
        from caramba.agents.budget import describe_totals

        typer.echo(f"spent: {describe_totals(result.totals)}")
        typer.echo(f"run directory: {result.run_dir}")

    @app.command("personas")
    def personas(
        model: ModelOpt = None,
        api_base: ApiBaseOpt = None,
        workspace: WorkspaceOpt = None,
    ) -> None:
        """List the agent personas: model each would use (or why none), tool groups, description."""
        from rich.console import Console
        from rich.table import Table

        from caramba.agents.models import resolve_team_models
        from caramba.agents.personas import list_personas, load_persona
        from caramba.engine.errors import CarambaError
        from caramba.workspace import Workspace

        ws = Workspace(workspace)
        override = _override(model, api_base)
        table = Table("persona", "model", "tools", "description")
        broken: list[str] = []
        for name in list_personas(ws.root):
            try:
                p = load_persona(name, ws.root)
            except CarambaError as e:  # one bad file must not hide the others: show it as a row
                broken.append(e.render())
                table.add_row(name, "unusable: broken persona file (below)", "", "")
                continue
            try:
                shown = resolve_team_models([p], ws.config().llm, override)[name].describe()
            except CarambaError as e:
                shown = "unusable: " + e.message.splitlines()[-1].split("is not usable: ")[-1].removeprefix("  - ")
            table.add_row(name, shown, ", ".join(p.tools), p.description)
        Console().print(table)
        for problem in broken:
            typer.echo(f"error: {problem}", err=True)
        if broken:
            raise typer.Exit(2)  # listed, but a broken persona file is still an error for scripts

    @app.command("chat")
    def chat(
        a2a: Annotated[str, typer.Option("--a2a", help="base URL of an A2A agent, e.g. http://127.0.0.1:9000")],
        message: Annotated[Optional[str], typer.Option("--message", "-m", help="send one message and exit")] = None,
    ) -> None:
        """Talk to an A2A agent (streams its replies)."""
        from caramba.agents.a2a_client import A2AChatError, chat_loop

        exchanges = chat_loop(a2a, message)
        if message is not None and exchanges and exchanges[-1][0] != "TASK_STATE_COMPLETED":
            # scripts calling `caramba chat -m` must see that the agent did not answer
            raise A2AChatError(f"the agent's task ended {exchanges[-1][0]}",
                               fix="see the agent server's log (for `caramba a2a serve`: its terminal and the "
                                   "transcript under runs/a2a/)")

    a2a_app = typer.Typer(help="caramba's research lead over the A2A protocol.", no_args_is_help=True)

    @a2a_app.command("serve")
    def serve(
        host: Annotated[Optional[str], typer.Option(help="bind address (default 127.0.0.1 or a2a.host)")] = None,
        port: Annotated[Optional[int], typer.Option(help="port (default 9000 or a2a.port)")] = None,
        model: ModelOpt = None,
        api_base: ApiBaseOpt = None,
        allow_remote: Annotated[bool, typer.Option("--allow-remote", help="allow a non-loopback bind (no auth!)")] = False,
        max_cost_usd: Annotated[Optional[float], typer.Option(help="budget: USD across all requests (every model must be in LiteLLM's price table)")] = None,
        persona: Annotated[str, typer.Option(help="the persona to serve (default: the research lead, with its team as sub-agents)")] = "research_lead",
        workspace: WorkspaceOpt = None,
    ) -> None:
        """Serve the research lead (with its team as sub-agents), or --persona, over A2A."""
        from caramba.agents.a2a_server import serve_a2a
        from caramba.workspace import Workspace

        ws = Workspace(workspace)
        cfg = ws.config().a2a
        serve_a2a(ws, host=host or cfg.host, port=port or cfg.port or 9000,
                  override=_override(model, api_base), allow_remote=allow_remote,
                  max_cost_usd=max_cost_usd, persona=persona)

    app.add_typer(a2a_app, name="a2a")
