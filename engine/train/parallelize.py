"""Wrap a system for its run's strategy: DDP, FSDP2 per block, activation checkpointing.

* ``ddp``: :class:`torch.nn.parallel.DistributedDataParallel` around the system; gradients
  are averaged across ranks in backward (skipped on all but the last micro-batch of a
  gradient-accumulation step).
* ``fsdp``: ``torch.distributed.fsdp.fully_shard`` on every block, then on the system
  (parameters become sharded ``DTensor`` s, gathered per block in forward/backward).
  Mixed precision: with ``use_amp`` the fp32 master parameters are all-gathered in
  ``amp_dtype`` and gradients reduced in fp32 (torchtitan's default policy); with
  ``dtype: bfloat16`` parameters, compute and reduction are all bf16.
* ``activation_checkpointing: true`` (any strategy): every block recomputes its
  activations in backward instead of storing them (``torch.utils.checkpoint``,
  non-reentrant). State-dict names do not change, so checkpoints stay compatible.

Blocks: the repeating unit of the model — the :class:`~caramba.engine.topology.base.Topology`
children (with parameters) of the ``ModuleList`` holding the most of them. For the GPT
presets that is the residual sub-blocks a ``NestedTopology repeat:`` expands to; a model
without such a list is sharded (or checkpointed) as one unit.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from caramba.engine.data.loader import BatchPlan, BatchStream
from caramba.engine.train.distributed import DistributedError, Parallel
from caramba.engine.train.options import TrainOptions

# FSDP2 warns when a wrapped module returns a view (logits reshaped in the head); caramba's
# objectives never modify model outputs in place, which is what that warning is about.
warnings.filterwarnings("ignore", message=r"FSDP2-wrapped module .* returned a view tensor")


def find_blocks(system: nn.Module) -> list[nn.Module]:
    """The model's repeating blocks (see the module docstring); may be empty."""
    from caramba.engine.topology.base import Topology

    best: list[nn.Module] = []
    for module in system.modules():
        if isinstance(module, nn.ModuleList):
            blocks = [m for m in module if isinstance(m, Topology) and any(True for _ in m.parameters())]
            if len(blocks) > len(best):
                best = blocks
    return best


def _checkpointed(forward: Any) -> Any:
    @functools.wraps(forward)
    def run(*args: Any, **kwargs: Any) -> Any:
        if not torch.is_grad_enabled():  # evaluation / decoding: nothing to recompute
            return forward(*args, **kwargs)
        return torch.utils.checkpoint.checkpoint(forward, *args, use_reentrant=False, **kwargs)

    run._caramba_checkpointed = True  # type: ignore[attr-defined]
    return run


def apply_activation_checkpointing(system: nn.Module) -> int:
    """Checkpoint every block's forward (idempotent); returns how many blocks."""
    blocks = find_blocks(system) or [system]
    for block in blocks:
        if not getattr(block.forward, "_caramba_checkpointed", False):
            block.forward = _checkpointed(block.forward)  # instance attribute: FQNs unchanged
    return len(blocks)


def _mixed_precision(opts: TrainOptions) -> Any:
    from torch.distributed.fsdp import MixedPrecisionPolicy

    if not opts.use_amp:
        return MixedPrecisionPolicy()
    if opts.amp_dtype == "float16":
        raise DistributedError("distributed: fsdp with use_amp/amp_dtype float16: fp16 needs a sharded gradient "
                               "scaler, which caramba does not provide", fix="set amp_dtype: bfloat16 under fsdp")
    return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)


def wrap_model(system: nn.Module, parallel: Parallel, opts: TrainOptions, device: torch.device) -> nn.Module:
    """The module the loop calls: ``system`` itself, a DDP wrapper, or ``system`` sharded
    in place by FSDP2. ``system`` must already be on ``device``."""
    if opts.activation_checkpointing:
        apply_activation_checkpointing(system)
    if parallel.strategy == "ddp":
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(system, device_ids=ids)
    if parallel.strategy == "fsdp":
        from torch.distributed.fsdp import FSDPModule, fully_shard

        if isinstance(system, FSDPModule):  # a later run of the same target: already sharded
            return system
        mp = _mixed_precision(opts)
        for block in find_blocks(system):
            fully_shard(block, mp_policy=mp)
        fully_shard(system, mp_policy=mp)
    return system


def make_parallel_optimizer(system: nn.Module, parallel: Parallel, opts: TrainOptions) -> torch.optim.Optimizer:
    """The run's optimizer; under FSDP ``torch.optim`` (its parameters are DTensors, which
    caramba's Triton AdamW does not take)."""
    from caramba.engine.train.optim import make_optimizer, param_groups

    if parallel.strategy != "fsdp" or opts.optimizer != "adamw":
        return make_optimizer(system, opts)
    return torch.optim.AdamW(param_groups(system, opts.weight_decay), lr=opts.lr, betas=opts.betas, eps=opts.eps,
                             weight_decay=opts.weight_decay)


@contextlib.contextmanager
def accumulating(wrapped: nn.Module, parallel: Parallel, *, last: bool) -> Iterator[None]:
    """Gradient sync only on the last micro-batch of an optimizer step."""
    if parallel.strategy == "ddp" and not last:
        with wrapped.no_sync():  # type: ignore[operator]
            yield
        return
    if parallel.strategy == "fsdp":
        wrapped.set_requires_gradient_sync(last)  # type: ignore[operator]
    yield


def as_float(value: torch.Tensor | float) -> float:
    """A Python float from a tensor, a replicated DTensor (FSDP grad norm) or a float."""
    if hasattr(value, "full_tensor"):
        value = value.full_tensor()  # type: ignore[union-attr]
    return float(value)


class ShardedBatchStream(BatchStream):
    """:class:`BatchStream` whose global batch order is unchanged, but each rank loads
    only its contiguous slice of every batch."""

    def __init__(self, dataset: torch.utils.data.Dataset, batch_size: int, seed: int, parallel: Parallel) -> None:
        super().__init__(dataset, batch_size, seed)
        self.rows = parallel.local_rows(batch_size)

    def next_plan(self) -> BatchPlan:
        idx, seed = self._next_global()  # the global batch
        lo, hi = self.rows
        return BatchPlan(tuple(idx[lo:hi]), seed, row0=lo)
