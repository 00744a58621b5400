"""``trainer.upcycle``: retrofit a trained teacher's architecture (e.g. to DBA) by distillation.

Runs of a target with this trainer set ``train.phase``:

* ``blockwise`` — the first time a teacher is needed it is loaded (``train.teacher_ckpt``,
  see :mod:`caramba.engine.train.upcycle_surgery`) and the student initialised from it
  (``train.dba_init``). Then, attention block by attention block, the student's block is
  trained to reproduce the teacher's block output from the teacher's block input
  (MSE). The teacher runs a *truncated* forward (stopped right after block ``i``); with
  ``cache_teacher_outputs`` a pool of teacher (input, output) pairs is computed once per
  block and cycled. Each block stops at ``convergence_target`` (loss below), after
  ``convergence_patience`` steps without a 1% improvement, or at ``convergence_max_steps``
  (default: the run's ``steps``). ``reset_lr_per_block`` (config) gives each block a fresh
  optimizer. SIGTERM/SIGINT (and ``save_every``) checkpoint the phase atomically
  mid-block: student weights plus ``blockwise = {block, block_step, gstep, optimizer,
  convergence state, data positions}`` and the RNG states; ``--resume`` continues from
  that block and step (the teacher pool is redrawn from the saved data position), so the
  result equals an uninterrupted run's. Checkpoints are numbered by the global blockwise
  step; the final one by the run's ``steps``.
* ``global`` — the whole student trains with the target's objective plus, when
  ``distill_weight > 0``, ``distill_weight · T² · KL(teacher_T ‖ student_T)`` on the logits;
  this is ``trainer.standard``'s loop (checkpoints, eval, resume) with that objective.

``self.teacher`` is what verify gates and ``teacher`` benchmarks compare against.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from caramba.engine.data.base import Component
from caramba.engine.data.loader import BatchStream
from caramba.engine.errors import CarambaError
from caramba.engine.infer.cache_set import attention_layers
from caramba.engine.infer.generate import lm_logits
from caramba.engine.train.checkpoint import save_checkpoint, set_rng_state
from caramba.engine.train.objectives import ObjectiveComponent, ObjectiveResult
from caramba.engine.train.registry import TRAINERS
from caramba.engine.train.trainer import StandardTrainer, TrainJob, TrainOutcome


class UpcycleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reset_lr_per_block: bool = Field(True, description="a fresh optimizer (and lr) for every block")
    distill_weight: float = Field(0.0, ge=0, description="global phase: weight of the logit KL to the teacher")
    distill_temperature: float = Field(2.0, gt=0, description="global phase: softmax temperature of the KL")
    teacher_pool: int = Field(16, gt=0, description="cached teacher batches per block (cache_teacher_outputs)")


class _Stop(Exception):
    """Raised by a hook to end the teacher's forward after the block of interest."""


class DistillObjective(ObjectiveComponent):
    """The target's objective + logit KL to the teacher."""

    def __init__(self, base: ObjectiveComponent, teacher: torch.nn.Module, weight: float, temp: float) -> None:
        self.base, self.teacher, self.weight, self.temp = base, teacher, weight, temp

    def __call__(self, outputs, batch, system=None) -> ObjectiveResult:  # type: ignore[override]
        res = self.base(outputs, batch, system)
        if self.weight == 0:
            return res
        with torch.no_grad():
            t = lm_logits(self.teacher, batch["input_ids"]).float()
        s = outputs["logits"].float()
        T = self.temp
        kl = torch.nn.functional.kl_div(torch.log_softmax(s / T, -1).flatten(0, 1), torch.log_softmax(t / T, -1)
                                        .flatten(0, 1), log_target=True, reduction="batchmean") * T * T
        return ObjectiveResult(res.loss + self.weight * kl, {**res.metrics, "kl": kl.detach(),
                                                              "loss": (res.loss + self.weight * kl).detach()})


@TRAINERS.register("trainer.upcycle")
class UpcycleTrainer(Component):
    Config = UpcycleConfig

    def __init__(self, config: object = None) -> None:
        super().__init__(config)
        self.teacher: torch.nn.Module | None = None

    def _ensure_teacher(self, job: TrainJob) -> torch.nn.Module:
        if self.teacher is not None:
            return self.teacher
        if not job.opts.teacher_ckpt:
            raise CarambaError(f"runs[{job.run_id}]: trainer.upcycle needs train.teacher_ckpt",
                               fix="set teacher_ckpt: '<teacher target>/<run id>' or a local Hugging Face folder")
        from caramba.engine.manifest import load_manifest
        from caramba.engine.train.upcycle_surgery import load_teacher, upcycle_surgery

        run_dir = job.checkpoint_dir.parent.parent
        manifest = load_manifest(run_dir / "manifest.yml")
        # run_dir = <workspace>/runs/<manifest>/<target>/<run id>; relative folders resolve in the workspace
        self.teacher = load_teacher(job.opts.teacher_ckpt, manifest=manifest, run_dir=run_dir, manifest_dir=None,
                                    workspace_root=run_dir.parents[3]).to(job.device)
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        if job.resume_state is None and job.opts.phase == "blockwise":  # global continues the blockwise weights
            info = upcycle_surgery(job.system, self.teacher, job.opts.dba_init)
            job.recorder.event("upcycle_surgery", job.run_id, dba_init=job.opts.dba_init, **info)
        return self.teacher

    def train(self, job: TrainJob) -> TrainOutcome:
        phase = job.opts.phase
        if phase not in ("blockwise", "global"):
            raise CarambaError(f"runs[{job.run_id}]: trainer.upcycle runs phase blockwise or global, got '{phase}'",
                               fix="set train.phase: blockwise (then a global run), or use trainer.standard")
        if job.opts.num_workers:
            raise CarambaError(f"runs[{job.run_id}]: trainer.upcycle reads its batches in the training process; "
                               f"train.num_workers={job.opts.num_workers} is not supported there",
                               fix="remove train.num_workers from this run (or set it to 0); "
                                   "trainer.standard supports data-loading workers")
        job.system.to(job.device)
        teacher = self._ensure_teacher(job)
        if phase == "global":
            cfg: UpcycleConfig = self.config  # type: ignore[assignment]
            job.objective = DistillObjective(job.objective, teacher, cfg.distill_weight, cfg.distill_temperature)
            job.upcycle = True  # type: ignore[attr-defined]  (lets the standard loop run a global phase)
            return StandardTrainer(None).train(job)
        if job.resume_state is not None and job.resume_state.get("final_metrics") is not None:
            return TrainOutcome("completed", job.steps, job.resume_state["final_metrics"])
        return self._blockwise(job, teacher)

    def _teacher_pair(self, teacher: torch.nn.Module, block: torch.nn.Module, ids: torch.Tensor):
        got: dict[str, torch.Tensor] = {}

        def hook(_m, inputs, output):
            got["x"], got["y"] = inputs[0].detach(), output.detach()
            raise _Stop

        h = block.register_forward_hook(hook)
        try:
            with torch.no_grad():
                lm_logits(teacher, ids)
        except _Stop:
            pass
        finally:
            h.remove()
        return got["x"], got["y"]

    def _blockwise(self, job: TrainJob, teacher: torch.nn.Module) -> TrainOutcome:
        cfg: UpcycleConfig = self.config  # type: ignore[assignment]
        opts = job.opts
        s_blocks, t_blocks = attention_layers(job.system), attention_layers(teacher)
        stream = BatchStream(job.data.train, opts.batch_size, job.seed)
        max_steps = opts.convergence_max_steps or job.steps
        res = _resume_point(job, len(s_blocks))
        if job.resume_state is not None:
            set_rng_state(job.resume_state["rng"])
        job.recorder.event("run_started", job.run_id, steps=job.steps, start_step=res["gstep"], device=str(job.device),
                           resumed=job.resume_state is not None, phase="blockwise", blocks=len(s_blocks),
                           start_block=res["block"], start_block_step=res["block_step"])
        for p in job.system.parameters():
            p.requires_grad_(False)
        optimizer = None
        gstep, finals, t0, t_steps = res["gstep"], dict(res["finals"]), time.perf_counter(), res["gstep"]
        total = max_steps * len(s_blocks)
        for i, (sb, tb) in enumerate(zip(s_blocks, t_blocks)):
            if i < res["block"]:
                continue
            resumed = i == res["block"] and job.resume_state is not None
            for p in sb.parameters():
                p.requires_grad_(True)
            if optimizer is None or cfg.reset_lr_per_block:
                optimizer = torch.optim.AdamW([p for b in s_blocks for p in b.parameters()], lr=opts.lr,
                                              betas=opts.betas, eps=opts.eps, weight_decay=opts.weight_decay)
            if resumed:
                optimizer.load_state_dict(res["optimizer"])
                stream.load_state_dict(res["block_stream"])
            sb.train()
            block_stream = stream.state_dict()    # the pool (if any) is drawn from here: a resume redraws it
            pool = None
            if opts.cache_teacher_outputs:
                pool = [self._teacher_pair(teacher, tb, stream.next_batch()["input_ids"].to(job.device))
                        for _ in range(min(cfg.teacher_pool, max_steps))]
            if resumed:
                stream.load_state_dict(res["stream"])
            best, since, loss_v, step = ((res["best"], res["since"], res["loss"], res["block_step"]) if resumed
                                         else (math.inf, 0, math.inf, 0))
            stop_block = resumed and res["block_done"]
            while not stop_block and step < max_steps:
                step += 1
                x, y = pool[(step - 1) % len(pool)] if pool else self._teacher_pair(
                    teacher, tb, stream.next_batch()["input_ids"].to(job.device))
                loss = torch.nn.functional.mse_loss(sb(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_v, gstep = float(loss.detach()), gstep + 1
                if step % opts.log_every == 0 or step == 1:
                    job.recorder.metric({"run": job.run_id, "step": gstep, "split": "train", "loss": loss_v,
                                         "block": i})
                    rate = (gstep - t_steps) / max(time.perf_counter() - t0, 1e-9)
                    job.recorder.event("progress", job.run_id, step=gstep, total=total, loss=loss_v, lr=opts.lr,
                                       tokens_per_s=rate * x.shape[0] * x.shape[1],
                                       eta_s=(total - gstep) / max(rate, 1e-9), block=i, block_step=step)
                if opts.convergence_target is not None and loss_v < opts.convergence_target:
                    stop_block = True
                elif loss_v < best * 0.99:
                    best, since = loss_v, 0
                else:
                    since += 1
                    stop_block = since >= opts.convergence_patience
                stopping = job.should_stop()
                if stopping or (opts.save_every and gstep % opts.save_every == 0):
                    state = {"final_metrics": None, "steps": job.steps, "blockwise": {
                        "block": i, "block_step": step, "block_done": stop_block or step >= max_steps,
                        "gstep": gstep, "best": best, "since": since, "loss": loss_v, "finals": finals,
                        "block_stream": block_stream, "stream": stream.state_dict(),
                        "optimizer": optimizer.state_dict()}}
                    path = save_checkpoint(job.checkpoint_dir, gstep, job.system, state, keep=opts.keep_checkpoints)
                    job.recorder.event("checkpoint", job.run_id, step=gstep, path=str(path), block=i, block_step=step)
                if stopping:
                    return TrainOutcome("cancelled", gstep, {"train_loss": loss_v, "block": float(i)})
            for p in sb.parameters():
                p.requires_grad_(False)
            finals[f"block{i}_mse"] = loss_v
            job.recorder.event("block_done", job.run_id, block=i, steps=step, loss=loss_v)
        for p in job.system.parameters():
            p.requires_grad_(True)
        final = {"steps": float(job.steps), "blockwise_steps": float(gstep),
                 "train_loss": sum(finals.values()) / len(finals), **finals}
        path = save_checkpoint(job.checkpoint_dir, job.steps, job.system, {"final_metrics": final, "steps": job.steps},
                               keep=opts.keep_checkpoints)
        job.recorder.event("checkpoint", job.run_id, step=job.steps, path=str(path))
        return TrainOutcome("completed", job.steps, final)


def _resume_point(job: TrainJob, n_blocks: int) -> dict[str, Any]:
    """Where the blockwise phase starts: block 0 step 0, or the position a checkpoint saved."""
    if job.resume_state is None:
        return {"block": 0, "block_step": 0, "gstep": 0, "finals": {}}
    st = job.resume_state.get("blockwise")
    if st is None or not 0 <= int(st["block"]) < n_blocks:
        raise CarambaError(f"runs[{job.run_id}]: the checkpoint to resume from is not a blockwise-phase checkpoint "
                           f"of this model ({n_blocks} attention blocks)",
                           fix="resume with the manifest the run started with, or start a new run without --resume")
    return st
