"""``runs[].train``: every knob of a training run, with documented defaults.

Fields not set here fall back, in order, to ``defaults.runtime`` (``device``,
``save_every``) and ``defaults.logging`` (``eval_iters``); the :class:`Manifest` fills
them in after validation, so the runner reads ``run.train.<field>`` only.

Some fields belong to features other work implements (the upcycle trainer's
``teacher_ckpt``/``convergence_*``, ``peft``, ``distributed``, ``orchestrator_*``). They
are accepted and validated now; the trainer raises ``NotImplementedYet`` when a run
actually needs one that does not exist yet.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import AliasChoices, Field, ValidationInfo, field_validator, model_validator

from caramba.engine.manifest.schema_base import Float, Int, Fraction, NonNegInt, PositiveInt, StrictModel, problem

#: ``torch.compile`` modes ("default" = Inductor's default, passed as ``mode=None``).
CompileMode = Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]

_DEVICE = r"^(auto|cpu|mps|meta|cuda(:\d+)?)$"
#: the most data-loading workers a run may ask for on this machine
MAX_WORKERS = (os.cpu_count() or 1) * 4


class PeftConfig(StrictModel):
    """Parameter-efficient finetuning: wrap matching linear layers with LoRA adapters."""

    enabled: bool = Field(True, description="turn the adapters on (false keeps the block but trains fully)")
    type: Literal["lora"] = Field("lora", description="adapter kind; LoRA is the one implemented")
    r: PositiveInt = Field(8, description="adapter rank; 8 is the usual starting point")
    alpha: Float = Field(16.0, gt=0, description="scaling numerator: updates are scaled by alpha / r")
    dropout: Fraction = Field(0.0, description="dropout on the adapter input")
    target_modules: list[str] = Field(
        default_factory=lambda: ["attention"],
        description="name fragments of the linear layers to wrap (matched against module paths)")
    modules_to_save: list[str] = Field(default_factory=list,
                                       description="modules trained fully next to the adapters (e.g. the head)")


class TrainConfig(StrictModel):
    """How one run trains. Defaults are small-and-safe; every field is documented."""

    phase: Literal["standard", "blockwise", "global"] = Field(
        "standard", description="standard: end to end; blockwise/global: upcycle distillation phases")
    batch_size: PositiveInt = Field(8, description="sequences (or examples) per optimizer micro-batch")
    block_size: PositiveInt | None = Field(
        None, description="sequence length; None = the dataset's block_size")
    lr: Float = Field(3e-4, gt=0, description="peak learning rate (3e-4 is the AdamW classic for small GPTs)")
    device: str = Field("auto", pattern=_DEVICE,
                        description="auto (cuda if present, else cpu), cpu, cuda, cuda:N, mps, meta")
    dtype: Literal["float32", "float16", "bfloat16"] = Field(
        "float32", description="parameter dtype; mixed precision is use_amp's job")

    optimizer: Literal["adamw", "sgd"] = Field("adamw", description="adamw (fused kernel on CUDA) or sgd")
    weight_decay: Float = Field(0.0, ge=0, description="decoupled weight decay; 0 = none")
    betas: tuple[float, float] = Field((0.9, 0.95), description="AdamW betas (GPT-style 0.95 second moment)")
    eps: Float = Field(1e-8, gt=0, description="AdamW epsilon")
    momentum: Float = Field(0.9, ge=0, lt=1, description="SGD momentum")

    scheduler: Literal["none", "constant", "linear", "cosine"] = Field(
        "none", description="none/constant: flat lr (after warmup); linear/cosine: decay to min_lr_ratio*lr")
    warmup_steps: NonNegInt = Field(0, description="linear warmup from 0 to lr over this many steps")
    min_lr_ratio: Fraction = Field(0.0, description="final lr as a fraction of lr for linear/cosine")
    grad_clip_norm: Float | None = Field(None, gt=0, description="clip the global grad norm; None = off")
    gradient_accumulation_steps: PositiveInt = Field(1, description="micro-batches per optimizer step")

    use_amp: bool = Field(False, description="autocast mixed precision (CUDA only)")
    amp_dtype: Literal["float16", "bfloat16"] = Field("bfloat16", description="autocast dtype")
    compile_model: bool = Field(False, description="torch.compile the model before training")
    compile_mode: CompileMode = Field(
        "default", description="torch.compile mode; reduce-overhead replays each step as a CUDA graph "
                               "(removes per-op launch cost when a small model leaves the GPU idle)")
    activation_checkpointing: bool = Field(False, description="recompute block activations in backward")
    num_workers: NonNegInt = Field(
        0, description="data-loading worker processes; 0 = read batches in the training process. "
                       "The batch sequence is the same for every value")
    pin_memory: bool = Field(False, description="pin host batches for faster GPU copies (CUDA only)")
    prefetch_factor: PositiveInt = Field(2, description="batches each worker reads ahead (needs num_workers > 0)")

    eval_every: NonNegInt = Field(0, description="evaluate every N steps; 0 = only at the end")
    eval_iters: PositiveInt = Field(20, description="batches per evaluation (default: defaults.logging.eval_iters)")
    save_every: NonNegInt = Field(
        0, description="checkpoint every N steps; 0 = only at the end (default: defaults.runtime.save_every)")
    log_every: PositiveInt = Field(10, description="log a metrics line every N steps")

    teacher_ckpt: str | None = Field(None, description="teacher weights for upcycling (HF folder or checkpoint)")
    dba_init: Literal["svd", "random", "fresh"] = Field(
        "svd", description="how upcycle surgery initialises decoupled attention from the teacher")
    cache_teacher_outputs: bool = Field(False, description="cache teacher activations for blockwise distillation")
    convergence_target: Float | None = Field(None, gt=0, description="stop a block once its loss is below this")
    convergence_patience: PositiveInt = Field(100, description="steps without improvement before moving on")
    convergence_max_steps: PositiveInt | None = Field(None, description="hard cap of steps per block")
    peft: PeftConfig | None = Field(None, description="LoRA adapters; None = train every parameter")

    distributed: Literal["none", "ddp", "fsdp"] = Field(
        "none", validation_alias=AliasChoices("distributed", "distributed_strategy"),
        description="data parallelism under torchrun (alias: distributed_strategy)")
    distributed_backend: Literal["nccl", "gloo"] | None = Field(
        None, description="process-group backend; None = nccl on CUDA, gloo on CPU")

    orchestrator_enabled: bool = Field(False, description="let the orchestrator switch optimizers mid-run")
    orchestrator_decision_interval: PositiveInt = Field(500, description="steps between orchestrator decisions")
    orchestrator_initial_strategy: str = Field("conservative_adamw", description="orchestrator's first strategy")
    orchestrator_use_adagc: bool = Field(True, description="adaptive gradient clipping under the orchestrator")

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 <= b < 1.0 for b in v):
            raise problem(f"betas must each be in [0, 1), got {list(v)}", "use e.g. betas: [0.9, 0.95]")
        return v

    @field_validator("num_workers")
    @classmethod
    def _workers_in_range(cls, v: int) -> int:
        if v > MAX_WORKERS:
            raise problem(f"num_workers {v} is more than {MAX_WORKERS} (4 per CPU core of this machine, "
                          f"which has {os.cpu_count()})",
                          f"use at most {MAX_WORKERS}; 2-8 workers usually keep a GPU fed, 0 reads in-process")
        return v

    @field_validator("compile_mode")
    @classmethod
    def _compile_mode_needs_compile(cls, v: str, info: ValidationInfo) -> str:
        if not info.data.get("compile_model", False):
            raise problem(f"compile_mode '{v}' is set but compile_model is false",
                          "set compile_model: true, or remove compile_mode")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if "prefetch_factor" in self.model_fields_set and self.num_workers == 0:
            raise problem("prefetch_factor applies to data-loading workers, but num_workers is 0",
                          "set num_workers > 0, or remove prefetch_factor")
        if self.use_amp and self.dtype != "float32":
            raise problem(f"use_amp with dtype {self.dtype}: autocast expects float32 parameters",
                          "set dtype: float32 with use_amp: true, or turn use_amp off")
        return self
