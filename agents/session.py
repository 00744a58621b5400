"""Running one process: pre-flight, run directory, MCP link, team, outcome.

:func:`run_process` is the single entry point behind ``caramba run`` (process targets),
``caramba brainstorm`` and the other agent commands::

    result = run_process(ProcessSpec(manifest="brainstorm", target="brainstorm",
                                     team={}, process={"type": "brainstorm", "topic": "..."}),
                         workspace=Workspace(), override=ModelOverride("openai/gpt-4o-mini"))

Order matters: the process section is validated, every persona's model resolved and a
cost budget checked against LiteLLM's price table *before* anything is written, so "no
usable model" or "unpriced model under a cost budget" (exit 2) leaves no run directory.
Then the run directory and transcript are created, caramba's MCP server is started
embedded, the team is built and the process function runs. The run ends ``completed``,
``failed`` (the error is recorded in the transcript and re-raised; a budget stop also
writes a ``budget_exceeded`` event and exits 3) or ``cancelled`` (Ctrl-C). The body runs
under ``asyncio.timeout(max_wall_s)``, so the wall-clock limit stops even a model or tool
call in flight. What the process spent (LLM calls, tokens, cost, wall time) is in the
``process_finished`` event, ``run.json`` (``totals``) and :attr:`ProcessResult.totals`.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caramba.agents.budget import Accountant, BudgetExceeded, check_priced
from caramba.agents.config import parse_process, team_for
from caramba.agents.mcp_link import McpLink
from caramba.agents.models import ModelOverride, resolve_team_models
from caramba.agents.personas import load_persona
from caramba.agents.team import Team
from caramba.agents.transcript import ProcessRun, summarize
from caramba.engine.errors import CarambaError
from caramba.workspace import MemoryDefaults, Workspace

#: process type → module with ``async def run(ctx) -> dict`` (outputs for the summary)
MODULES = {"brainstorm": "caramba.agents.brainstorm", "manifest_author": "caramba.agents.manifest_author",
           "paper_write": "caramba.agents.paper_write", "paper_review": "caramba.agents.paper_review",
           "a2a_chat": "caramba.agents.a2a_chat"}


@dataclass
class ProcessSpec:
    """A process target, from a manifest or built by a CLI command."""

    manifest: str
    target: str
    team: dict[str, str]
    process: dict[str, Any]
    where: str = "process"
    #: the manifest's ``defaults.memory`` (merged over caramba.yml when writing memory)
    memory: MemoryDefaults | None = None


@dataclass
class ConsoleIO:
    """How a process talks to a human: ``read(prompt)`` (None at end of input) and ``write``."""

    read: Callable[[str], str | None]
    write: Callable[[str], None]

    @staticmethod
    def terminal() -> "ConsoleIO":
        def read(prompt: str) -> str | None:
            try:
                return input(prompt)
            except EOFError:
                return None

        def write(text: str) -> None:
            print(text, flush=True)

        return ConsoleIO(read, write)


@dataclass
class ProcessContext:
    """What a process function gets."""

    workspace: Workspace
    spec: ProcessSpec
    cfg: Any
    roles: dict[str, str]
    team: Team
    run: ProcessRun
    link: McpLink | None
    io: ConsoleIO
    outputs: dict[str, Any] = field(default_factory=dict)

    def persona(self, role: str) -> str:
        return self.roles[role]

    async def tool(self, name: str, args: dict[str, Any]) -> tuple[bool, Any]:
        """Call an MCP tool for the process's own pipeline step (recorded as persona 'process')."""
        import time

        if self.link is None:
            raise CarambaError(f"process has no MCP link for tool {name}")
        t0 = time.monotonic()
        ok, data = await self.link.call(name, args)
        self.team.accountant.add_tool_call()
        self.run.emit("tool_call", "process", tool=name, args=summarize(args), ok=ok, result=summarize(data),
                      duration_s=round(time.monotonic() - t0, 4))
        return ok, data


@dataclass
class ProcessResult:
    run_dir: Path
    state: str
    outputs: dict[str, Any]
    totals: dict[str, Any] = field(default_factory=dict)


def run_process(spec: ProcessSpec, *, workspace: Workspace | None = None, override: ModelOverride | None = None,
                run_id: str | None = None, argv: list[str] | None = None, io: ConsoleIO | None = None,
                with_mcp: bool = True) -> ProcessResult:
    """Run a process to its end (blocking); see the module docstring."""
    ws = workspace or Workspace()
    cfg = parse_process(spec.process, spec.where)
    if override is None and cfg.model:
        override = ModelOverride(cfg.model, cfg.api_base)
    roles = team_for(cfg.type, spec.team)
    personas = {name: load_persona(name, ws.root) for name in dict.fromkeys(roles.values())}
    settings = resolve_team_models(list(personas.values()), ws.config().llm, override)  # before any write
    check_priced(cfg.budget, {n: s.model for n, s in settings.items()})
    run = ProcessRun(ws.runs_dir, spec.manifest, spec.target, cfg.type, run_id=run_id, argv=argv or sys.argv)
    run.emit("process_started", process=cfg.type, config=cfg.model_dump(mode="json"), team=roles,
             models={n: s.describe() for n, s in settings.items()})
    accountant = Accountant(cfg.budget)
    module = importlib.import_module(MODULES[cfg.type])
    console = io or ConsoleIO.terminal()

    async def main() -> dict[str, Any]:
        link = McpLink(ws) if (with_mcp and roles) else None
        if link is not None:
            await link.__aenter__()
        team = Team(list(personas.values()), settings, link, run, accountant)
        ctx = ProcessContext(ws, spec, cfg, roles, team, run, link, console)
        try:
            async with asyncio.timeout(max(accountant.remaining_wall_s(), 0.0)):
                return await module.run(ctx)
        except TimeoutError:
            raise accountant.wall_exceeded() from None
        finally:
            await team.close()
            if link is not None:
                await link.__aexit__(None, None, None)

    try:
        outputs = asyncio.run(main())
    except KeyboardInterrupt:
        run.finish("cancelled", totals=accountant.totals())
        raise
    except BudgetExceeded as e:
        run.emit("budget_exceeded", limit=e.limit, budget=cfg.budget.model_dump(), totals=accountant.totals())
        run.emit("error", message=e.render())
        run.finish("failed", totals=accountant.totals())
        raise
    except CarambaError as e:
        run.emit("error", message=e.render())
        run.finish("failed", totals=accountant.totals())
        raise
    except Exception as e:
        run.emit("error", message=f"{type(e).__name__}: {e}")
        run.finish("failed", totals=accountant.totals())
        raise
    totals = accountant.totals()
    run.finish("completed", totals=totals, outputs=summarize(outputs))
    return ProcessResult(run.dir, "completed", outputs, totals)
