"""Batches in a seeded, resumable order.

:class:`BatchStream` walks a map-style dataset in epochs. Epoch ``e`` visits the items in
``randperm(len, generator=seed·e)`` order, so the whole order is a pure function of
``(seed, epoch, position)``: its :meth:`state_dict` is just those numbers, stored in every
checkpoint, and a resumed run sees exactly the batches the uninterrupted run would have.

:func:`eval_batches` yields the first ``n`` validation batches in file order — the same
batches at every evaluation, so validation curves are comparable point to point.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from caramba.engine.data.base import DataError


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack a list of ``{key: tensor}`` items into one batch ``{key: (B, ...)}``."""
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


class BatchStream:
    """An endless stream of shuffled batches (last partial batch of an epoch dropped)."""

    def __init__(self, dataset: torch.utils.data.Dataset, batch_size: int, seed: int, *, shuffle: bool = True) -> None:
        n = len(dataset)  # type: ignore[arg-type]
        if n < batch_size:
            raise DataError(f"the training split has {n} items, fewer than batch_size={batch_size}",
                            fix="lower batch_size or use more data")
        self.dataset, self.batch_size, self.seed, self.shuffle, self.n = dataset, batch_size, seed, shuffle, n
        self.epoch, self.pos = 0, 0
        self._perm: torch.Tensor | None = None
        self._perm_epoch = -1

    def _order(self) -> torch.Tensor:
        if self._perm_epoch != self.epoch:
            if self.shuffle:
                g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
                self._perm = torch.randperm(self.n, generator=g)
            else:
                self._perm = torch.arange(self.n)
            self._perm_epoch = self.epoch
        assert self._perm is not None
        return self._perm

    def next_batch(self) -> dict[str, torch.Tensor]:
        if self.pos + self.batch_size > self.n:
            self.epoch, self.pos = self.epoch + 1, 0
        idx = self._order()[self.pos: self.pos + self.batch_size]
        self.pos += self.batch_size
        return collate([self.dataset[int(i)] for i in idx])

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            yield self.next_batch()

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
