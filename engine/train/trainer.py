"""``trainer.standard`` (alias ``trainer.train``): the optimisation loop of one run.

One step = ``gradient_accumulation_steps`` micro-batches → (unscale, clip) → optimizer
step → scheduler step. Every ``log_every`` steps the loop reports a ``progress`` event and
a ``train`` metrics row (the loss *of that step*, not a running mean, so a resumed run
reports exactly what the uninterrupted one would); every ``eval_every`` steps and at the
end it evaluates the first ``eval_iters`` validation batches; every ``save_every`` steps
and at the end it writes a checkpoint. ``should_stop()`` (set by SIGTERM/SIGINT) ends
the loop after the current step with a checkpoint.

Determinism: the caller seeds every RNG before building the model; the data order is
a function of (seed, epoch, position) and every RNG state is saved in the checkpoint,
so ``resume`` continues the same curve bit for bit on CPU.

Data parallelism (``train.distributed``) goes through ``job.parallel``
(:mod:`caramba.engine.train.distributed`): the wrapped model, this rank's slice of each
global batch, metrics averaged (tokens summed) over ranks, a stop agreed by all ranks,
and checkpoints in the strategy's format (:mod:`caramba.engine.train.dist_checkpoint`).
With the default single-process ``Parallel`` every one of those is the identity.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from pydantic import BaseModel, ConfigDict

from caramba.engine.data.base import Component, DataSplits
from caramba.engine.data.loader import BatchStream, eval_batches
from caramba.engine.data.workers import START_METHOD, batch_source
from caramba.engine.errors import CarambaError
from caramba.engine.train.checkpoint import set_rng_state
from caramba.engine.train.device import resolve_precision
from caramba.engine.train.dist_checkpoint import load_optimizer_state, save_run_checkpoint
from caramba.engine.train.distributed import Parallel
from caramba.engine.train.objectives import ObjectiveComponent
from caramba.engine.train.optim import make_scheduler
from caramba.engine.train.parallelize import (ShardedBatchStream, accumulating, as_float, make_parallel_optimizer,
                                              wrap_model)
from caramba.engine.train.options import TrainOptions
from caramba.engine.train.registry import TRAINERS
from caramba.engine.train.tasks import TaskComponent


class Recorder(Protocol):
    """Where the loop reports (the runner's run recorder)."""

    def event(self, name: str, run: str | None, **fields: Any) -> None: ...
    def metric(self, row: dict[str, Any]) -> None: ...


@dataclass
class TrainJob:
    """One run's training, fully resolved by the runner."""

    run_id: str
    system: torch.nn.Module
    objective: ObjectiveComponent
    task: TaskComponent
    data: DataSplits
    opts: TrainOptions
    steps: int
    seed: int
    device: torch.device
    checkpoint_dir: Path
    recorder: Recorder
    resume_state: dict[str, Any] | None = None
    should_stop: Callable[[], bool] = lambda: False
    parallel: Parallel = field(default_factory=Parallel)


@dataclass
class TrainOutcome:
    state: str  # completed | cancelled
    step: int
    metrics: dict[str, float] = field(default_factory=dict)


def _floats(metrics: dict[str, torch.Tensor], weight: float = 1.0) -> dict[str, float]:
    return {k: float(v) * weight for k, v in metrics.items()}


#: the ``train.compile_mode`` values under which the compiled model replays CUDA graphs.
_GRAPH_MODES = ("reduce-overhead", "max-autotune")


def _replays_graphs(opts: TrainOptions, device: torch.device) -> bool:
    """Whether the compiled model replays CUDA graphs. Each micro-batch (and each eval batch)
    then starts a new replay, which may overwrite the previous call's graph outputs: the loop
    has consumed them by then (backward done, metrics read)."""
    return opts.compile_model and opts.compile_mode in _GRAPH_MODES and device.type == "cuda"


def _to_device(batch: dict[str, torch.Tensor], device: torch.device, pin: bool = False) -> dict[str, torch.Tensor]:
    if device.type == "cpu":
        return batch
    if pin:  # workers' batches arrive pinned already; in-process ones are pinned here
        batch = {k: v if v.is_pinned() else v.pin_memory() for k, v in batch.items()}
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _tokens(batch: dict[str, torch.Tensor]) -> int:
    """Tokens (language modelling) or examples (everything else) in a batch."""
    ids = batch.get("input_ids")
    return int(ids.numel()) if ids is not None else int(next(iter(batch.values())).shape[0])


class StandardConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


@TRAINERS.register("trainer.standard", aliases=("trainer.train",))
class StandardTrainer(Component):
    """End-to-end training of a system with one objective."""

    Config = StandardConfig

    def train(self, job: TrainJob) -> TrainOutcome:
        opts = job.opts
        if opts.phase != "standard" and type(self) is StandardTrainer and not getattr(job, "upcycle", False):
            raise CarambaError(f"runs[{job.run_id}].train.phase '{opts.phase}' needs trainer.upcycle",
                               fix="set the target's trainer: trainer.upcycle, or phase: standard")
        prec = resolve_precision(opts, job.device)
        par = job.parallel
        system = job.system.to(device=job.device, dtype=prec.param_dtype)
        wrapped = wrap_model(system, par, opts, job.device)
        mode = None if opts.compile_mode == "default" else opts.compile_mode  # None: Inductor's default
        model = torch.compile(wrapped, mode=mode) if opts.compile_model else wrapped
        optimizer = make_parallel_optimizer(system, par, opts)
        scheduler = make_scheduler(optimizer, job.steps, opts)
        scaler = torch.amp.GradScaler("cuda", enabled=prec.use_scaler)
        pin = opts.pin_memory and job.device.type == "cuda"  # pinned host memory only speeds up copies to a GPU
        stream = batch_source(BatchStream(job.data.train, opts.batch_size, job.seed) if par.world_size == 1
                              else ShardedBatchStream(job.data.train, opts.batch_size, job.seed, par),
                              num_workers=opts.num_workers, pin_memory=pin, prefetch_factor=opts.prefetch_factor)
        # aux losses are gathered from a module list collected once (the tree is fixed during a run)
        fixed = system.fixed_structure() if hasattr(system, "fixed_structure") else contextlib.nullcontext()
        try:
            with fixed:
                return self._loop(job, stream, pin, prec, system, wrapped, model, optimizer, scheduler, scaler)
        finally:
            stream.close()  # joins data-loading workers: normal end, stop signal or error

    def _loop(self, job: TrainJob, stream: Any, pin: bool, prec: Any, system: torch.nn.Module,
              wrapped: torch.nn.Module, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
              scheduler: Any, scaler: Any) -> TrainOutcome:
        opts, par = job.opts, job.parallel
        step, last_val = 0, {}
        if job.resume_state is not None:
            st = job.resume_state
            load_optimizer_state(par, system, optimizer, st)
            scheduler.load_state_dict(st["scheduler"])
            scaler.load_state_dict(st["scaler"])
            stream.load_state_dict(st["data"])
            set_rng_state(st["rng"])
            step, last_val = int(st["step"]), dict(st.get("last_val", {}))
        job.recorder.event("run_started", job.run_id, steps=job.steps, start_step=step, device=str(job.device),
                           resumed=job.resume_state is not None, distributed=par.strategy,
                           world_size=par.world_size, global_batch_size=opts.batch_size,
                           data_loading={"num_workers": opts.num_workers, "pin_memory": pin,
                                         "start_method": START_METHOD if opts.num_workers else None})

        def save(at: int, final: dict[str, float] | None = None) -> None:
            state = {"scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "data": stream.state_dict(),
                     "last_val": last_val, "final_metrics": final, "steps": job.steps}
            path = save_run_checkpoint(par, job.checkpoint_dir, at, system, optimizer, state,
                                       keep=opts.keep_checkpoints, final=final is not None)
            job.recorder.event("checkpoint", job.run_id, step=at, path=str(path))

        model.train()
        last_train: dict[str, float] = {}
        t_log, tok_log, t_start, steps_start = time.perf_counter(), 0, time.perf_counter(), step
        accum, scaled = opts.gradient_accumulation_steps, prec.use_scaler
        graphs = _replays_graphs(opts, job.device)
        while step < job.steps:
            lr = optimizer.param_groups[0]["lr"]
            step_metrics: dict[str, float] = {}
            log_now = (step + 1) % opts.log_every == 0 or step + 1 == job.steps
            for micro in range(accum):
                batch = _to_device(stream.next_batch(), job.device, pin)
                if graphs:
                    torch.compiler.cudagraph_mark_step_begin()
                with accumulating(wrapped, par, last=micro + 1 == accum):
                    with prec.autocast():
                        res = job.objective(model(batch), batch, system)
                    loss = res.loss / accum if accum > 1 else res.loss  # no extra autograd node for /1
                    (scaler.scale(loss) if scaled else loss).backward()
                if log_now:  # floats force a device sync: only on logging steps
                    for k, v in _floats(res.metrics, 1.0 / accum).items():
                        step_metrics[k] = step_metrics.get(k, 0.0) + v
                tok_log += _tokens(batch)
            if opts.grad_clip_norm:
                if scaled:
                    scaler.unscale_(optimizer)
                gnorm = torch.nn.utils.clip_grad_norm_(system.parameters(), opts.grad_clip_norm)
            if scaled:  # fp16 autocast on CUDA; otherwise GradScaler.step is exactly optimizer.step
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            step += 1
            if step_metrics:
                step_metrics = par.mean(step_metrics)  # every rank logs on the same steps
                if not all(math.isfinite(x) for x in step_metrics.values()):
                    raise CarambaError(f"run '{job.run_id}': loss became {step_metrics.get('loss')} at step {step}",
                                       fix="lower lr, enable grad_clip_norm, or check the data (on CUDA the "
                                           "cross-entropy kernel makes the loss NaN for targets outside the "
                                           "model's vocabulary: compare the tokenizer's vocab_size with the model's)")
                now = time.perf_counter()
                tps = par.sum([float(tok_log)])[0] / max(now - t_log, 1e-9)
                t_log, tok_log = now, 0
                if opts.grad_clip_norm:
                    step_metrics["grad_norm"] = as_float(gnorm)
                last_train = job.task.derive(step_metrics)
                eta = (now - t_start) / max(step - steps_start, 1) * (job.steps - step)
                job.recorder.metric({"run": job.run_id, "step": step, "split": "train", **last_train, "lr": lr,
                                     "tokens_per_s": tps})
                job.recorder.event("progress", job.run_id, step=step, total=job.steps, loss=last_train["loss"],
                                   lr=lr, tokens_per_s=tps, eta_s=eta)
            if job.data.val is not None and ((opts.eval_every and step % opts.eval_every == 0) or step == job.steps):
                last_val = self.evaluate(job, model, system, prec)
                job.recorder.metric({"run": job.run_id, "step": step, "split": "val", **last_val})
                job.recorder.event("eval", job.run_id, step=step, **{f"val_{k}": v for k, v in last_val.items()})
            if step == job.steps:
                final = {"steps": float(step), **{f"train_{k}": v for k, v in last_train.items()},
                         **{f"val_{k}": v for k, v in last_val.items()}}
                save(step, final)
                return TrainOutcome("completed", step, final)
            if opts.save_every and step % opts.save_every == 0:
                save(step)
            if par.agree(job.should_stop()):
                if not (opts.save_every and step % opts.save_every == 0):
                    save(step)
                return TrainOutcome("cancelled", step, {f"train_{k}": v for k, v in last_train.items()})
        raise CarambaError(f"run '{job.run_id}' was asked to start at step {step} of {job.steps}")

    @torch.no_grad()
    def evaluate(self, job: TrainJob, model: torch.nn.Module, system: torch.nn.Module, prec: Any) -> dict[str, float]:
        """Mean metrics over the first ``eval_iters`` validation batches (example-weighted)."""
        assert job.data.val is not None
        model.eval()
        graphs = _replays_graphs(job.opts, job.device)
        totals: dict[str, float] = {}
        count = 0
        for batch in eval_batches(job.data.val, job.opts.batch_size, job.opts.eval_iters):
            rows = next(iter(batch.values())).shape[0]
            lo, hi = job.parallel.eval_rows(rows)  # this rank's share of the batch
            n = hi - lo  # a rank with no rows still runs a forward (FSDP gathers), weighted 0
            batch = _to_device({k: v[lo:hi] if n else v[:1] for k, v in batch.items()}, job.device)
            if graphs:
                torch.compiler.cudagraph_mark_step_begin()
            with prec.autocast():
                res = job.objective(model(batch), batch, system)
            for k, v in _floats(res.metrics, n).items():
                totals[k] = totals.get(k, 0.0) + v
            count += n
        keys = sorted(totals)
        summed = job.parallel.sum([totals[k] for k in keys] + [float(count)])
        totals, count = dict(zip(keys, summed[:-1])), int(summed[-1])
        model.train()
        return job.task.derive({k: v / max(count, 1) for k, v in totals.items()})
