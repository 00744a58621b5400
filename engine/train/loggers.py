"""Experiment-tracker sinks: TensorBoard (always available) and Weights & Biases.

TensorBoard event files go to ``<run dir>/tensorboard`` with scalars named
``<run>/<split>/<metric>``. Weights & Biases is used only when ``defaults.logging.wandb``
is true; it is not a dependency of caramba, so when it is enabled but not installed the
run stops before training with an error saying so (never a silent skip). ``wandb_mode``
(online/offline/disabled) is passed through.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from caramba.engine.errors import CarambaError
from caramba.engine.train.options import LoggingOptions

_SKIP = {"run", "step", "split"}


class TensorBoardSink:
    def __init__(self, folder: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(folder))

    def on_event(self, row: dict[str, Any]) -> None:
        pass

    def on_metric(self, row: dict[str, Any]) -> None:
        for key, value in row.items():
            if key not in _SKIP and isinstance(value, (int, float)):
                self.writer.add_scalar(f"{row['run']}/{row['split']}/{key}", value, row["step"])

    def close(self) -> None:
        self.writer.close()


class WandbSink:
    def __init__(self, opts: LoggingOptions, run_dir: Path, name: str, config: dict[str, Any]) -> None:
        import wandb

        self.wandb = wandb
        self.run = wandb.init(project=opts.wandb_project, entity=opts.wandb_entity or None, mode=opts.wandb_mode,
                              dir=str(run_dir), name=name, config=config, reinit=True)

    def on_event(self, row: dict[str, Any]) -> None:
        pass

    def on_metric(self, row: dict[str, Any]) -> None:
        data = {f"{row['run']}/{row['split']}/{k}": v for k, v in row.items()
                if k not in _SKIP and isinstance(v, (int, float))}
        self.run.log(data, step=row["step"])

    def close(self) -> None:
        self.run.finish()


def check_wandb(opts: LoggingOptions) -> None:
    """Raise before training when W&B is enabled but unusable."""
    if opts.wandb and opts.wandb_mode != "disabled" and importlib.util.find_spec("wandb") is None:
        raise CarambaError("defaults.logging.wandb is true but the 'wandb' package is not installed",
                           fix="pip install wandb, or set defaults.logging.wandb: false (or wandb_mode: disabled)")


def make_trackers(opts: LoggingOptions, run_dir: Path, name: str, config: dict[str, Any]) -> list[Any]:
    check_wandb(opts)
    sinks: list[Any] = []
    if opts.tensorboard:
        sinks.append(TensorBoardSink(run_dir / "tensorboard"))
    if opts.wandb and opts.wandb_mode != "disabled":
        sinks.append(WandbSink(opts, run_dir, name, config))
    return sinks
