"""Data parallelism for a target: who this process is, its process group, and the
collectives the trainer needs.

The same manifest runs on 1 or N processes::

    caramba run manifests/standard_transformer.yml --set targets[0].runs[0].train.distributed=ddp
    caramba run manifests/standard_transformer.yml --nproc-per-node 2 \\
        --set targets[0].runs[0].train.distributed=fsdp --set targets[0].runs[0].train.distributed_backend=gloo

``train.distributed`` (alias ``distributed_strategy``) is ``none | ddp | fsdp``. Under
torchrun (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` in the environment) the process joins
torchrun's group; a ``ddp``/``fsdp`` run started without torchrun makes a one-process
group, so one code path (and one checkpoint format) serves every world size.

Semantics that make the curve independent of the world size:

* ``train.batch_size`` is the **global** micro-batch: every rank takes its contiguous
  ``batch_size / world_size`` slice of the same seeded global batch (it reads only its own
  items). The data order (:class:`~caramba.engine.data.loader.BatchStream` state) is
  global, so a checkpoint resumes on any number of ranks.
* Logged loss and metrics are the mean over ranks; ``tokens_per_s`` is the sum.
* Evaluation splits every validation batch across ranks and reduces weighted sums, so
  ``val_loss`` equals the single-process value.
* A stop request (SIGTERM/SIGINT on any rank) is agreed on by all ranks every step, so
  every rank stops after the same step and writes the same checkpoint.

Only rank 0 writes the run directory, logs and artifacts (:attr:`Parallel.is_main`).
All ranks share the run directory (one machine, or a shared filesystem across nodes).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from caramba.engine.errors import CarambaError

STRATEGIES = ("none", "ddp", "fsdp")


class DistributedError(CarambaError):
    """Distributed training is misconfigured (strategy, backend, device, world size)."""


def launched_world() -> tuple[int, int, int] | None:
    """``(rank, world_size, local_rank)`` when torchrun started this process, else None."""
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        return None
    return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    """True unless torchrun started this process as a rank other than 0."""
    world = launched_world()
    return world is None or world[0] == 0


def target_strategy(tgt: Any) -> tuple[str, str | None]:
    """The one ``(strategy, backend)`` every run of the target agrees on."""
    seen = {(getattr(r.train, "distributed", "none"), getattr(r.train, "distributed_backend", None))
            for r in tgt.runs}
    if len(seen) > 1:
        found = ", ".join(f"runs[{r.id}]: {r.train.distributed}/{r.train.distributed_backend}" for r in tgt.runs)
        raise DistributedError(f"target '{tgt.name}': runs disagree on train.distributed/distributed_backend ({found})",
                               fix="set the same distributed and distributed_backend on every run of the target")
    strategy, backend = next(iter(seen)) if seen else ("none", None)
    if strategy == "fsdp":
        for r in tgt.runs[1:]:  # the system stays sharded from one run to the next
            if getattr(r.train, "peft", None) is not None or getattr(r, "checkpoint", None):
                raise DistributedError(f"runs[{r.id}]: peft / checkpoint on a later run of an fsdp target "
                                       "(the model is already sharded by the first run)",
                                       fix="move the run into its own target, or use distributed: ddp")
    return strategy, backend


class Parallel:
    """A single process (``distributed: none``): every collective is the identity.

    :class:`DataParallel` overrides what changes with several ranks; the trainer and the
    runner only ever talk to this interface.
    """

    strategy = "none"
    rank, world_size, local_rank = 0, 1, 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def place(self, device: torch.device) -> torch.device:
        """This rank's device for a run whose resolved device is ``device``."""
        return device

    def share(self, decide: Callable[[], Any]) -> Any:
        """Run ``decide`` on rank 0 and give every rank its result (or its error)."""
        return decide()

    def barrier(self) -> None:
        pass

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average each value over ranks (all ranks pass the same keys)."""
        return values

    def sum(self, values: list[float]) -> list[float]:
        return values

    def agree(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any rank."""
        return flag

    def local_rows(self, n: int) -> tuple[int, int]:
        """This rank's ``[start, end)`` of ``n`` rows (``n`` divisible by the world size)."""
        return 0, n

    def eval_rows(self, n: int) -> tuple[int, int]:
        """This rank's share of an evaluation batch of ``n`` rows (may be empty)."""
        return 0, n

    def roster(self) -> list[dict[str, Any]]:
        """Every rank's ``{rank, pid, host}`` (a collective: all ranks call it)."""
        return [{"rank": self.rank, "pid": os.getpid(), "host": socket.gethostname()}]

    def record_failure(self, error: BaseException) -> None:
        pass

    def close(self) -> None:
        pass


class DataParallel(Parallel):
    """One rank of a ``ddp``/``fsdp`` group (torchrun's, or a one-process group)."""

    def __init__(self, strategy: str, backend: str, rank: int, world_size: int, local_rank: int,
                 *, owns_group: bool) -> None:
        self.strategy, self.backend = strategy, backend
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank
        self.owns_group = owns_group

    def place(self, device: torch.device) -> torch.device:
        if device.type == "cuda":
            if device.index is not None and self.world_size > 1 and device.index != self.local_rank:
                raise DistributedError(f"device '{device}' is fixed, but rank {self.rank} must use cuda:{self.local_rank}",
                                       fix="use device: cuda (or auto): each rank takes the GPU of its local rank")
            device = torch.device("cuda", self.local_rank if self.world_size > 1 else (device.index or 0))
            torch.cuda.set_device(device)
        if self.backend == "nccl" and device.type != "cuda":
            raise DistributedError(f"distributed_backend nccl needs CUDA devices, but this run trains on {device}",
                                   fix="set distributed_backend: gloo for CPU training, or device: cuda")
        return device

    def _reduce(self, t: torch.Tensor, op: Any) -> torch.Tensor:
        if self.backend == "nccl":
            t = t.cuda()
        dist.all_reduce(t, op=op)
        return t.cpu()

    def share(self, decide: Callable[[], Any]) -> Any:
        box: list[Any] = [None]
        if self.rank == 0:
            try:
                box[0] = ("ok", decide())
            except CarambaError as e:
                box[0] = ("error", (e.message, e.fix))  # plain strings: any error subclass pickles
                dist.broadcast_object_list(box, src=0)
                raise
        dist.broadcast_object_list(box, src=0)
        kind, value = box[0]
        if kind == "error":
            raise DistributedError(f"rank 0 failed: {value[0]}", fix=value[1])
        return value

    def barrier(self) -> None:
        dist.barrier()

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        keys = sorted(values)
        t = self._reduce(torch.tensor([values[k] for k in keys], dtype=torch.float64), dist.ReduceOp.SUM)
        return {k: float(v) / self.world_size for k, v in zip(keys, t.tolist())}

    def sum(self, values: list[float]) -> list[float]:
        return self._reduce(torch.tensor(values, dtype=torch.float64), dist.ReduceOp.SUM).tolist()

    def agree(self, flag: bool) -> bool:
        return bool(self._reduce(torch.tensor([1.0 if flag else 0.0]), dist.ReduceOp.MAX).item())

    def local_rows(self, n: int) -> tuple[int, int]:
        if n % self.world_size:
            raise DistributedError(f"batch_size {n} does not split evenly over {self.world_size} ranks",
                                   fix=f"set train.batch_size (the global batch) to a multiple of {self.world_size}")
        per = n // self.world_size
        return self.rank * per, (self.rank + 1) * per

    def eval_rows(self, n: int) -> tuple[int, int]:
        per = -(-n // self.world_size)  # ceil: the last ranks may get fewer (or no) rows
        return min(n, self.rank * per), min(n, (self.rank + 1) * per)

    def roster(self) -> list[dict[str, Any]]:
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, super().roster()[0])
        return out

    def record_failure(self, error: BaseException) -> None:
        """Tell torchrun (and so ``caramba run --nproc-per-node``) why this rank failed."""
        path = os.environ.get("TORCHELASTIC_ERROR_FILE")
        if not path or os.path.exists(path):
            return
        text = error.render() if isinstance(error, CarambaError) else f"{type(error).__name__}: {error}"
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"message": f"rank {self.rank}/{self.world_size}: {text}", "timestamp": int(time.time())}, f)

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def open_parallel(tgt: Any, *, device: str | None = None) -> Parallel:
    """The :class:`Parallel` for a target: join torchrun's group (or make a one-process
    group) when its runs set ``distributed``; refuse a multi-process launch without it."""
    from caramba.engine.train.device import resolve_device

    strategy, backend = target_strategy(tgt)
    world = launched_world()
    if strategy == "none":
        if world is not None and world[1] > 1:
            raise DistributedError(f"started as {world[1]} processes, but target '{tgt.name}' has "
                                   "train.distributed: none (every process would train alone)",
                                   fix="set train.distributed: ddp or fsdp on the target's runs "
                                       "(e.g. --set targets[0].runs[0].train.distributed=ddp)")
        return Parallel()
    if not dist.is_available():
        raise DistributedError("this PyTorch build has no torch.distributed", fix="install a standard PyTorch build")
    dev = resolve_device(device or getattr(tgt.runs[0].train, "device", "auto"))
    backend = backend or ("nccl" if dev.type == "cuda" else "gloo")
    if backend == "nccl" and not dist.is_nccl_available():
        raise DistributedError("distributed_backend nccl is not available in this PyTorch build",
                               fix="use distributed_backend: gloo, or a CUDA build of PyTorch")
    rank, world_size, local_rank = world if world is not None else (0, 1, 0)
    if dist.is_initialized():
        if dist.get_world_size() != world_size or dist.get_backend() != backend:
            raise DistributedError(f"a process group ({dist.get_backend()}, {dist.get_world_size()} ranks) "
                                   f"already exists, but this target needs {backend} with {world_size}",
                                   fix="run one distributed target per process")
        return DataParallel(strategy, backend, rank, world_size, local_rank, owns_group=False)
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    timeout = timedelta(seconds=float(os.environ.get("CARAMBA_DIST_TIMEOUT_S", "600")))
    if world is None:  # one process, no launcher: an in-memory store is all it needs
        dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1, timeout=timeout)
    else:
        dist.init_process_group(backend, timeout=timeout)
    return DataParallel(strategy, backend, rank, world_size, local_rank, owns_group=True)


class NullRecorder:
    """The recorder of ranks other than 0: they train, but write and print nothing."""

    def event(self, name: str, run: str | None, **fields: Any) -> None:
        pass

    def metric(self, row: dict[str, Any]) -> None:
        pass

    def truncate_metrics(self, keep: Callable[[dict[str, Any]], bool]) -> int:
        return 0

    def close(self) -> None:
        pass
