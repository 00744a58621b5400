"""Batches in a seeded, resumable order.

:class:`BatchStream` walks a map-style dataset in epochs. Epoch ``e`` visits the items in
``randperm(len, generator=seed·e)`` order, so the whole order is a pure function of
``(seed, epoch, position)``: its :meth:`state_dict` is just those numbers, stored in every
checkpoint, and a resumed run sees exactly the batches the uninterrupted run would have.

Choosing a batch and reading it are separate steps: :meth:`BatchStream.next_plan` returns a
:class:`BatchPlan` (which items, and the seed for any randomness in reading them), and
:func:`fetch` reads a plan into tensors. The trainer either does both in-process
(``num_workers: 0``) or hands the plans to worker processes
(:mod:`caramba.engine.data.workers`), which read exactly the same batches.

A dataset may also define ``get_batch(indices)`` returning exactly the stacked items (token
windows gather a whole batch with one fancy index instead of B small reads).

Datasets whose items draw random numbers when read (``draws_random = True``, e.g. the
diffusion timestep of ``dataset.diffusion_vector``) get a private RNG seeded per item
from ``(seed, epoch, position, row)``: the draw does not depend on which process reads the
item, nor on the global RNG (which the model's dropout uses).

:func:`eval_batches` yields the first ``n`` validation batches in file order — the same
batches at every evaluation, so validation curves are comparable point to point.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from caramba.engine.data.base import DataError

_SEED_MOD = 2**62


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack a list of ``{key: tensor}`` items into one batch ``{key: (B, ...)}``."""
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


@dataclass(frozen=True)
class BatchPlan:
    """One batch to read: item ``indices``; item ``i`` of the plan is row ``row0 + i`` of
    the global batch whose reading seed is ``seed``."""

    indices: tuple[int, ...]
    seed: int
    row0: int = 0


def fetch(dataset: torch.utils.data.Dataset, plan: BatchPlan) -> dict[str, torch.Tensor]:
    """Read the items of ``plan`` and stack them (see the module docstring for RNG use). A
    dataset with ``get_batch(indices)`` (equal to stacking its items) reads in one gather."""
    if not getattr(dataset, "draws_random", False):
        get_batch = getattr(dataset, "get_batch", None)
        if get_batch is not None:
            return get_batch(plan.indices)
        return collate([dataset[i] for i in plan.indices])
    items = []
    with torch.random.fork_rng(devices=[]):  # the caller's RNG stream is left untouched
        for r, i in enumerate(plan.indices):
            torch.manual_seed((plan.seed + plan.row0 + r) % _SEED_MOD)
            items.append(dataset[i])
    return collate(items)


class BatchStream:
    """An endless stream of shuffled batches (last partial batch of an epoch dropped)."""

    def __init__(self, dataset: torch.utils.data.Dataset, batch_size: int, seed: int, *, shuffle: bool = True) -> None:
        n = len(dataset)  # type: ignore[arg-type]
        if n < batch_size:
            raise DataError(f"the training split has {n} items, fewer than batch_size={batch_size}",
                            fix="lower batch_size or use more data")
        self.dataset, self.batch_size, self.seed, self.shuffle, self.n = dataset, batch_size, seed, shuffle, n
        self.epoch, self.pos = 0, 0
        self._perm = torch.empty(0, dtype=torch.int64)
        self._perm_epoch = -1

    def _order(self) -> torch.Tensor:
        if self._perm_epoch != self.epoch:
            if self.shuffle:
                g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
                self._perm = torch.randperm(self.n, generator=g)
            else:
                self._perm = torch.arange(self.n)
            self._perm_epoch = self.epoch
        return self._perm

    def _next_global(self) -> tuple[list[int], int]:
        """The next global batch's item indices and reading seed; advances the cursor."""
        if self.pos + self.batch_size > self.n:
            self.epoch, self.pos = self.epoch + 1, 0
        seed = ((self.seed * 1_000_003 + self.epoch) * 1_000_033 + self.pos) * 4_099 % _SEED_MOD
        idx = self._order()[self.pos: self.pos + self.batch_size].tolist()
        self.pos += self.batch_size
        return idx, seed

    def next_plan(self) -> BatchPlan:
        """What the next batch is (and advance past it), without reading it."""
        idx, seed = self._next_global()
        return BatchPlan(tuple(idx), seed)

    def next_batch(self) -> dict[str, torch.Tensor]:
        return fetch(self.dataset, self.next_plan())

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            yield self.next_batch()

    def close(self) -> None:
        """Nothing to stop: batches are read in this process."""

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "epoch": self.epoch, "pos": self.pos, "n": self.n}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state.get("n") != self.n or state.get("seed") != self.seed:
            raise DataError(f"the checkpoint's data order was made for {state.get('n')} items with seed "
                            f"{state.get('seed')}, but the data now has {self.n} items with seed {self.seed}",
                            fix="resume with the same data and seed, or start a new run (without --resume)")
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])


def eval_batches(dataset: torch.utils.data.Dataset, batch_size: int, n_batches: int | None) -> Iterator[dict[str, torch.Tensor]]:
    """The first ``n_batches`` batches of ``dataset`` in order (all of it when None); the
    last batch may be smaller."""
    n = len(dataset)  # type: ignore[arg-type]
    total = (n + batch_size - 1) // batch_size
    for b in range(total if n_batches is None else min(total, n_batches)):
        yield collate([dataset[i] for i in range(b * batch_size, min(n, (b + 1) * batch_size))])
