"""The ``caramba`` command.

Experiment targets route to the engine, process targets to the agents. Each component
adds its own commands through a ``register(app)`` function in its ``cli`` module (listed
in ``COMMAND_MODULES``); those modules import only typer/rich at module level and load
heavy libraries inside the command bodies, so ``caramba --help`` stays fast.

Errors: a :class:`~caramba.engine.errors.CarambaError` prints its actionable message and
exits 2 (``--debug`` adds the traceback); any other exception is a bug and exits 1.
"""

from __future__ import annotations

import importlib
import sys
import traceback

import typer
from rich.console import Console
from rich.markup import escape

from caramba.engine.errors import CarambaError

app = typer.Typer(
    name="caramba",
    help="Manifest-driven neural-architecture research.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

#: modules whose ``register(app)`` adds commands, in help order.
COMMAND_MODULES: tuple[str, ...] = (
    "caramba.engine.cli",
    "caramba.kernels.cli",
    "caramba.codegraph.cli",
    "caramba.memory.cli",
    "caramba.tools.cli",
    "caramba.agents.cli",
    "caramba.api.cli",
)



@app.command()
def version() -> None:
    """Print caramba's version."""
    import caramba

    typer.echo(caramba.__version__)


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)



def _record_in_memory(result: object) -> None:
    """Write a completed run to Graphiti memory when memory is enabled — ``memory.enabled``
    in ``caramba.yml``, or the manifest's ``defaults.memory.enabled``, which wins — into
    the group they name (:mod:`caramba.memory.settings`); a no-op otherwise."""
    from caramba.memory.settings import run_memory_config
    from caramba.workspace import Workspace

    ws = Workspace()
    cfg = run_memory_config(ws, result.run_dir)  # type: ignore[attr-defined]
    if cfg.memory.enabled:
        from caramba.memory.record import record_run_result_sync

        record_run_result_sync(ws, result.run_dir, config=cfg)  # type: ignore[attr-defined]


importlib.import_module("caramba.engine.cli_run").finish_hooks.append(_record_in_memory)

err_console = Console(stderr=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script. Returns (and exits with) the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:
        args.remove("--debug")
    try:
        # standalone mode: typer/click print usage errors and raise SystemExit themselves
        app(args=args, prog_name="caramba", standalone_mode=True)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except CarambaError as e:
        if debug:
            traceback.print_exc()
        err_console.print(f"[bold red]error:[/] {escape(e.render())}", markup=True, highlight=False, soft_wrap=True)
        code = e.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        code = 130
    if argv is None:
        sys.exit(code)
    return code
