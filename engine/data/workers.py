"""Reading training batches in worker processes: ``train.num_workers``, ``pin_memory``,
``prefetch_factor``.

The batch *order* never leaves the main process. :class:`WorkerStream` wraps a
:class:`~caramba.engine.data.loader.BatchStream` (the cursor of batches the loop has
consumed) and feeds a ``torch.utils.data.DataLoader`` with the plans of a copy of that
stream running ahead; each worker reads whole batches (:func:`~caramba.engine.data.loader.fetch`)
and the loader hands them back in order. So:

* **the batch sequence is identical** for ``num_workers`` 0 and N with the same seed (the
  same plans are read by the same function; per-read randomness is seeded by the plan);
* **resume** needs nothing new: the checkpoint stores the consumed cursor, and the
  batches the workers had read ahead are simply read again after a resume;
* the DataLoader gets its own ``torch.Generator``, so starting workers does not consume
  the global RNG that the model's dropout draws from.

Workers are forked on Linux (the memory-mapped token files are shared, not copied) and
spawned elsewhere; each worker ignores SIGINT/SIGTERM — the main process decides when to
stop and then calls :meth:`WorkerStream.close`, which joins every worker (the trainer does
it in a ``finally``: normal end, SIGTERM, errors). If the main process is SIGKILLed, the
workers notice that their parent is gone and exit within ~5 s (torch's worker watchdog).

A :class:`~caramba.engine.errors.CarambaError` raised while a worker reads a batch (a
dataset problem) is sent back and raised again in the main process with its message and
fix, rather than as a worker traceback.
"""

from __future__ import annotations

import copy
import signal
import sys
from dataclasses import dataclass
from typing import Any

import torch

from caramba.engine.data.base import DataError
from caramba.engine.data.loader import BatchPlan, BatchStream, fetch
from caramba.engine.errors import CarambaError

#: how workers are started: fork shares memory-mapped data with the workers (Linux);
#: elsewhere fork is unsafe (macOS) or missing (Windows) and workers are spawned.
START_METHOD = "fork" if sys.platform.startswith("linux") else "spawn"


@dataclass(frozen=True)
class _Failure:
    """A user-facing error raised while a worker read a batch (picklable)."""

    message: str
    fix: str | None


class _PlanReader(torch.utils.data.Dataset):
    """Map-style view of a dataset whose keys are :class:`BatchPlan` s: one key = one batch."""

    def __init__(self, dataset: torch.utils.data.Dataset) -> None:
        self.dataset = dataset

    def __getitem__(self, plan: BatchPlan) -> dict[str, torch.Tensor] | _Failure:  # type: ignore[override]
        try:
            return fetch(self.dataset, plan)
        except CarambaError as e:  # sent to the main process, which raises it there
            return _Failure(e.message, e.fix)


class _PlanSampler(torch.utils.data.Sampler):
    """The plans of a copy of the consumed stream: endless, always ahead of the loop."""

    def __init__(self, stream: BatchStream) -> None:
        self.ahead = copy.copy(stream)  # cursor numbers are copied; the epoch order is rebuilt, never mutated

    def __iter__(self) -> Any:
        while True:
            yield self.ahead.next_plan()


def _passthrough(batch: Any) -> Any:
    return batch  # a plan is already read into one stacked batch


def _worker_init(worker_id: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process stops the workers itself
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class WorkerStream:
    """``next_batch``/``state_dict``/``load_state_dict``/``close`` like a BatchStream, with
    the reading done by ``num_workers`` worker processes (started on the first batch)."""

    def __init__(self, stream: BatchStream, *, num_workers: int, pin_memory: bool = False,
                 prefetch_factor: int = 2) -> None:
        if num_workers < 1:
            raise CarambaError(f"WorkerStream needs num_workers >= 1, got {num_workers}",
                               fix="read in-process with the BatchStream itself when num_workers is 0")
        self.stream, self.num_workers = stream, num_workers
        self.pin_memory, self.prefetch_factor = pin_memory, prefetch_factor
        self._it: Any = None

    def _start(self) -> None:
        loader = torch.utils.data.DataLoader(
            _PlanReader(self.stream.dataset), batch_size=None, sampler=_PlanSampler(self.stream),
            num_workers=self.num_workers, collate_fn=_passthrough, pin_memory=self.pin_memory,
            prefetch_factor=self.prefetch_factor, worker_init_fn=_worker_init,
            multiprocessing_context=START_METHOD, generator=torch.Generator().manual_seed(0))
        self._it = iter(loader)

    def next_batch(self) -> dict[str, torch.Tensor]:
        if self._it is None:
            self._start()
        self.stream.next_plan()  # the consumed cursor moves past the batch the workers deliver next
        out = next(self._it)
        if isinstance(out, _Failure):
            raise DataError(out.message, fix=out.fix)
        return out

    def worker_pids(self) -> list[int]:
        """Process ids of the running workers (empty before the first batch / after close)."""
        return [] if self._it is None else [int(w.pid) for w in self._it._workers]

    def state_dict(self) -> dict[str, int]:
        return self.stream.state_dict()

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.close()  # batches read ahead from the old position are dropped
        self.stream.load_state_dict(state)

    def close(self) -> None:
        """Stop and join every worker (idempotent)."""
        it, self._it = self._it, None
        if it is not None:
            it._shutdown_workers()  # torch's own join of the workers and the pin-memory thread

    def __enter__(self) -> WorkerStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def batch_source(stream: BatchStream, *, num_workers: int, pin_memory: bool,
                 prefetch_factor: int) -> BatchStream | WorkerStream:
    """The stream itself when ``num_workers`` is 0, else a :class:`WorkerStream` over it.
    ``pin_memory`` pins worker batches (the caller passes it only for CUDA devices)."""
    if num_workers == 0:
        return stream
    return WorkerStream(stream, num_workers=num_workers, pin_memory=pin_memory, prefetch_factor=prefetch_factor)
