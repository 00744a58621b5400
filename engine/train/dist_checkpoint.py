"""Checkpoints of data-parallel runs, written so they resume on any number of ranks.

``ddp`` (and ``none``): rank 0 writes the ordinary checkpoint
(:func:`~caramba.engine.train.checkpoint.save_checkpoint`: ``model.safetensors`` +
``state.pt`` with the full optimizer state); every rank holds the same weights and
optimizer state, so there is nothing else to gather.

``fsdp``: every rank writes its shards of the model and the optimizer with
``torch.distributed.checkpoint`` (DCP) into ``step_<n>/sharded/``; rank 0 adds
``state.pt`` (scheduler, scaler, data order, RNG, metrics — no optimizer) and, at the
run's final step, a consolidated ``model.safetensors`` for whatever reads weights next
(``runs[].checkpoint``, export, inference). DCP stores global shapes and shard offsets, so
a checkpoint written by N ranks loads on M ranks (or without a process group): the
model weights are read back into the plain, unsharded system before it is sharded
again, and the optimizer state straight into the new shards.

Atomicity is the ordinary one: all ranks write into one temporary folder; only after
every rank has finished does rank 0 rename it and move ``latest``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from caramba.engine.train.checkpoint import SHARDED, publish_checkpoint, rng_state, save_checkpoint
from caramba.engine.train.distributed import DistributedError, Parallel

FORMAT = "format"  # state.pt key: "sharded" for FSDP checkpoints


def save_run_checkpoint(parallel: Parallel, folder: Path, step: int, system: nn.Module,
                        optimizer: torch.optim.Optimizer, state: dict[str, Any], *, keep: int,
                        final: bool) -> Path:
    """Write ``folder/step_<step>`` for this run's strategy; every rank calls it."""
    if parallel.strategy != "fsdp":
        if parallel.is_main:
            save_checkpoint(folder, step, system, {**state, "optimizer": optimizer.state_dict()}, keep=keep)
        parallel.barrier()  # nobody runs ahead of a checkpoint that might be resumed
        return folder / f"step_{step}"
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_state_dict

    tmp = folder / f".step_{step}.tmp-sharded"  # one name for all ranks (they share the folder)
    if parallel.is_main:
        folder.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
    parallel.barrier()
    model_sd, optim_sd = get_state_dict(system, optimizer)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(tmp / SHARDED))
    full = None
    if final:  # all ranks take part in the gather; rank 0 receives the full tensors
        full = get_model_state_dict(system, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if parallel.is_main:
        torch.save({**state, FORMAT: "sharded", "world_size": parallel.world_size, "step": step,
                    "rng": rng_state()}, tmp / "state.pt")
        if full is not None:
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in full.items()}, str(tmp / "model.safetensors"))
        publish_checkpoint(folder, tmp, step, keep=keep)
    parallel.barrier()
    return folder / f"step_{step}"


def load_sharded_checkpoint(path: Path, system: nn.Module) -> dict[str, Any]:
    """Load an FSDP checkpoint's weights into the plain (not yet sharded) ``system`` and
    return its ``state.pt`` with ``checkpoint_path`` added (for the optimizer later)."""
    import torch.distributed.checkpoint as dcp

    target = system.state_dict()
    try:
        dcp.load({"model": target}, checkpoint_id=str(path / SHARDED))
    except Exception as e:  # DCP reports a mismatch as a generic CheckpointException
        raise DistributedError(f"sharded checkpoint {path} does not fit the model: {str(e).splitlines()[0][:300]}",
                               fix="resume with the same manifest the run was started with (see its manifest.yml)") from e
    system.load_state_dict(target)
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=False)
    state["checkpoint_path"] = str(path)
    return state


def load_optimizer_state(parallel: Parallel, system: nn.Module, optimizer: torch.optim.Optimizer,
                         state: dict[str, Any]) -> None:
    """Restore the optimizer of a resumed run from either checkpoint format."""
    sharded = state.get(FORMAT) == "sharded"
    if sharded != (parallel.strategy == "fsdp"):
        written = "distributed: fsdp (sharded optimizer state)" if sharded else "a full optimizer state (none/ddp)"
        raise DistributedError(f"the checkpoint {state.get('checkpoint_path', '')} was written with {written}, "
                               f"but the run now uses distributed: {parallel.strategy}",
                               fix="resume with the distributed strategy the run was started with "
                                   "(the number of ranks may change, the strategy may not)")
    if not sharded:
        optimizer.load_state_dict(state["optimizer"])
        return
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict, set_optimizer_state_dict

    osd = get_optimizer_state_dict(system, optimizer)  # allocates the (sharded) state to load into
    dcp.load({"optim": osd}, checkpoint_id=str(Path(state["checkpoint_path"]) / SHARDED))
    set_optimizer_state_dict(system, optimizer, osd)
