"""``caramba run FILE``: train an experiment target (or print its plan).

::

    caramba run manifests/mlp_classifier.yml
    caramba run manifests/standard_transformer.yml --set targets[0].runs[0].steps=50 --device cpu
    caramba run my.yml --target finetune --dry-run       # the plan: no data, no weights
    caramba run my.yml --resume                          # continue the newest run of the target
    caramba run my.yml --run-id 20250101-120000-ab12 --resume
    caramba run my.yml --nproc-per-node 2 --set targets[0].runs[0].train.distributed=ddp   # torchrun

Exit codes: 0 completed, 2 a user error (bad manifest, missing file — printed with
file, line, YAML path and a fix, no traceback), 130 cancelled (SIGINT/SIGTERM: the run
stops after the current step and leaves a checkpoint to ``--resume`` from).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

#: Runs ``type: process`` targets; installed by ``caramba.agents.cli.register`` (the engine
#: never imports the agents). Called as ``process_handler(manifest, target, run_id=, argv=)``.
process_handler: Callable[..., None] | None = None

#: Called with the ``RunResult`` of every completed run (e.g. to write it to research
#: memory). Installed by the root ``caramba`` command, which may import what the engine
#: must not.
finish_hooks: list[Callable[[object], None]] = []


def register(app: typer.Typer) -> None:
    """Add ``run`` to the root app."""
    app.command("run")(run)


def run(
    file: Annotated[Path, typer.Argument(help="the manifest to run", show_default=False)],
    target: Annotated[str | None, typer.Option("--target", "-t", help="target name or entrypoint (default: entrypoints.default, else the first)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the plan (meta device: no data, no weights) and stop")] = False,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a value: dotted.path=value (e.g. targets[0].runs[0].steps=5); repeatable")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the newest run of the target (or --run-id) from its last checkpoint")] = False,
    device: Annotated[str | None, typer.Option("--device", help="override every run's device: auto, cpu, cuda, cuda:N")] = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="the run directory name (default: a fresh YYYYmmdd-HHMMSS-xxxx)")] = None,
    allow_python_impl: Annotated[bool, typer.Option("--allow-python-impl", help="permit impl: python:module:Symbol (runs code the manifest names)")] = False,
    nproc_per_node: Annotated[int | None, typer.Option("--nproc-per-node", help="launch N ranks here through torchrun (needs train.distributed: ddp|fsdp)")] = None,
    nnodes: Annotated[int, typer.Option("--nnodes", help="number of nodes (with --rdzv-endpoint and --run-id)")] = 1,
    rdzv_endpoint: Annotated[str | None, typer.Option("--rdzv-endpoint", help="HOST:PORT where the nodes meet (multi-node)")] = None,
) -> None:
    """Run an experiment target: train its runs, write checkpoints, metrics and artifacts."""
    import shlex
    import sys

    from rich.console import Console
    from rich.markup import escape

    from caramba.engine.errors import ManifestError
    from caramba.engine.manifest import load_manifest

    try:
        manifest = load_manifest(file, overrides=set_ or [], allow_python_impl=allow_python_impl)
    except ManifestError as e:
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/] {escape(e.render())}",
                                                                    markup=True)
        raise typer.Exit(2) from None
    if dry_run:
        from caramba.engine.plan import make_plan

        Console().print(make_plan(manifest, target).render())
        return
    if getattr(manifest.target(target), "type", None) == "process":
        from caramba.engine.errors import CarambaError

        if process_handler is None:
            raise CarambaError("this target is a process (agent workflow) and the agents are not loaded",
                               fix="run it through the `caramba` command, which loads caramba.agents")
        process_handler(manifest, manifest.target(target).name, run_id=run_id, argv=["caramba", *sys.argv[1:]])
        return
    if nproc_per_node is not None or nnodes > 1 or rdzv_endpoint:
        from caramba.engine.train.launch import LaunchSpec, launch

        # every rank is `caramba run` again; rank 0 prints the summary and runs finish_hooks
        launch(LaunchSpec(file, nproc_per_node or 1, nnodes, rdzv_endpoint, target, tuple(set_ or ()),
                          resume, device, run_id, allow_python_impl), manifest)
        return
    from caramba.engine.runner import run_target

    result = run_target(manifest, target=target, run_id=run_id, resume=resume, device=device,
                        argv=["caramba", *sys.argv[1:]])
    from caramba.engine.train.distributed import is_main_process

    out = Console(highlight=False, soft_wrap=True)
    main_rank = is_main_process()  # under torchrun only rank 0 reports
    if result.state == "completed" and main_rank:
        for hook in finish_hooks:
            hook(result)
    if result.state != "completed":
        if main_rank:  # the same manifest, overrides and flags: a resume must train the same experiment
            again = ["caramba", "run", str(file), "--target", result.target, "--run-id", result.run_id, "--resume",
                     *(a for spec in set_ or [] for a in ("--set", spec)), *(["--device", device] if device else []),
                     *(["--allow-python-impl"] if allow_python_impl else [])]
            out.print(f"run {result.state} at {result.run_dir} — continue with: {escape(shlex.join(again))}")
        raise typer.Exit(130)
    if not main_rank:
        return
    for rid, metrics in result.results.items():
        shown = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k.startswith("val_") or k == "steps")
        out.print(f"[bold]{escape(rid)}[/]: {escape(shown)}")
    out.print(f"run directory: {result.run_dir}")
