"""``type: process`` targets of a manifest → :func:`caramba.agents.session.run_process`.

The engine never imports the agents: ``caramba.agents.cli.register`` installs
:func:`run_process_target` as ``caramba.engine.cli_run.process_handler``, and
``caramba run FILE`` calls it when the chosen target is a process target.
"""

from __future__ import annotations

from typing import Any

from caramba.agents.budget import describe_totals
from caramba.agents.models import ModelOverride
from caramba.agents.session import ProcessResult, ProcessSpec, run_process
from caramba.workspace import Workspace


def spec_of(manifest: Any, target: str | None) -> ProcessSpec:
    """The process spec of a loaded manifest's target (a ``ProcessTarget``)."""
    tgt = manifest.target(target)
    index = [t.name for t in manifest.targets].index(tgt.name)
    return ProcessSpec(manifest=manifest.name, target=tgt.name, team=dict(tgt.team), process=dict(tgt.process),
                       where=f"targets[{index}].process", memory=manifest.defaults.memory)


def run_process_target(manifest: Any, target: str | None, *, run_id: str | None = None,
                       argv: list[str] | None = None, model: str | None = None,
                       api_base: str | None = None) -> ProcessResult:
    """Run a manifest's process target and print where its outputs are."""
    from rich.console import Console

    override = ModelOverride(model, api_base) if model else None
    result = run_process(spec_of(manifest, target), workspace=Workspace(), override=override,
                         run_id=run_id, argv=argv)
    out = Console(highlight=False, soft_wrap=True)
    for k, v in result.outputs.items():
        out.print(f"{k}: {v}")
    out.print(f"spent: {describe_totals(result.totals)}")
    out.print(f"run directory: {result.run_dir}")
    return result
