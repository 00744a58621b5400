"""Checkpoints: ``checkpoints/<run id>/step_<n>/{model.safetensors, state.pt}``.

* ``model.safetensors``: the weights (``safetensors.torch.save_model`` handles tied
  parameters such as a shared embedding/head matrix).
* ``state.pt``: everything else needed to continue *exactly*: optimizer, scheduler and
  AMP-scaler state, the step, the data order (:class:`~caramba.engine.data.loader.BatchStream`
  state) and the Python/NumPy/torch(/CUDA) RNG states, plus the metrics so far.
* ``sharded/`` instead of the weights and optimizer (``distributed: fsdp``): a
  ``torch.distributed.checkpoint`` folder, see :mod:`caramba.engine.train.dist_checkpoint`.

A checkpoint is written into a temporary folder and renamed into place, then the file
``latest`` (the folder name) is replaced atomically, so a kill at any instant leaves the
previous checkpoint intact. Only the newest ``keep`` step folders are kept.

``state.pt`` holds NumPy RNG arrays, so it is loaded with ``weights_only=False``: load
only checkpoints your own runs wrote.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_model, save_model

from caramba.engine.errors import CarambaError

LATEST = "latest"
SHARDED = "sharded"  # FSDP: torch.distributed.checkpoint files of model + optimizer


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(),
                             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _step_dirs(folder: Path) -> list[Path]:
    dirs = [d for d in folder.glob("step_*") if d.is_dir() and d.name[5:].isdigit()]
    return sorted(dirs, key=lambda d: int(d.name[5:]))


def save_checkpoint(folder: Path, step: int, model: torch.nn.Module, state: dict[str, Any], *, keep: int) -> Path:
    """Write ``folder/step_<step>`` atomically, point ``latest`` at it, prune old ones."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".step_{step}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_model(_unwrap(model), str(tmp / "model.safetensors"))
    torch.save({**state, "step": step, "rng": rng_state()}, tmp / "state.pt")
    return publish_checkpoint(folder, tmp, step, keep=keep)


def publish_checkpoint(folder: Path, tmp: Path, step: int, *, keep: int) -> Path:
    """Rename a completely written ``tmp`` folder to ``step_<step>``, point ``latest`` at
    it and prune all but the newest ``keep`` (also used by sharded checkpoints)."""
    final = folder / f"step_{step}"
    if final.exists():  # the same step written again (e.g. a resumed run's final step)
        shutil.rmtree(final)
    os.replace(tmp, final)
    pointer = folder / f".{LATEST}.tmp-{os.getpid()}"
    pointer.write_text(final.name)
    os.replace(pointer, folder / LATEST)
    for old in _step_dirs(folder)[:-keep]:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(folder: Path) -> Path | None:
    """The folder ``latest`` names, or None when no checkpoint was completed."""
    pointer = folder / LATEST
    if not pointer.exists():
        return None
    path = folder / pointer.read_text().strip()
    weights = (path / "model.safetensors").exists() or (path / SHARDED / ".metadata").exists()
    if not (path / "state.pt").exists() or not weights:
        raise CarambaError(f"checkpoint pointer {pointer} names {path}, which is incomplete",
                           fix=f"delete {pointer} to fall back to a fresh start, or restore the folder")
    return path


def load_checkpoint(path: Path, model: torch.nn.Module, *, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load weights into ``model`` (strict) and return the state dict (RNG not yet applied)."""
    if (path / SHARDED).is_dir():
        from caramba.engine.train.dist_checkpoint import load_sharded_checkpoint

        return load_sharded_checkpoint(path, _unwrap(model))
    missing, unexpected = load_model(_unwrap(model), str(path / "model.safetensors"), strict=False,
                                     device=str(device))
    if missing or unexpected:
        raise CarambaError(f"checkpoint {path} does not fit the model (missing: {sorted(missing)[:5]}, "
                           f"unexpected: {sorted(unexpected)[:5]})",
                           fix="resume with the same manifest the run was started with (see its manifest.yml)")
    return torch.load(path / "state.pt", map_location="cpu", weights_only=False)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The original module behind ``torch.compile``."""
    return getattr(model, "_orig_mod", model)
