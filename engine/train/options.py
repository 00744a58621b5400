"""The trainer's resolved options for one run: ``runs[].train`` + manifest defaults.

The manifest schema (``caramba.engine.manifest``) validates ``runs[].train`` and
``defaults``; this module turns them into the exact settings the loop uses, in one
place, with caramba's defaults (each with its reason) and the precedence
``runs[].train`` > ``defaults.runtime`` / ``defaults.logging`` > the defaults below.

Fields that the manifest accepts for later work (distillation, convergence stopping, the optimizer orchestrator) raise
:class:`~caramba.engine.errors.NotImplementedYet` here — only when a run sets them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from caramba.engine.errors import CarambaError, NotImplementedYet, first_error
from caramba.engine.manifest.schema_train import CompileMode

#: accepted by the schema, implemented by later work: a run that sets them (to anything
#: but the schema's default) stops here with NotImplementedYet.
#: trainer.upcycle's fields: passed through (into TrainOptions) only for phase blockwise/global.
UPCYCLE_FIELDS: tuple[str, ...] = ("teacher_ckpt", "cache_teacher_outputs", "dba_init", "convergence_target",
                                   "convergence_patience", "convergence_max_steps")
LATER_FIELDS: dict[str, str] = {
    **{name: "upcycling (trainer.upcycle with train.phase: blockwise | global)" for name in UPCYCLE_FIELDS},
    "orchestrator_enabled": "the optimizer orchestrator",
    "orchestrator_decision_interval": "the optimizer orchestrator",
    "orchestrator_initial_strategy": "the optimizer orchestrator",
    "orchestrator_use_adagc": "the optimizer orchestrator",
}


class TrainOptions(BaseModel):
    """Everything ``trainer.standard`` needs for one run."""

    model_config = ConfigDict(extra="forbid")
    phase: Literal["standard", "blockwise", "global"] = "standard"
    batch_size: int = Field(8, gt=0)
    block_size: int | None = Field(None, gt=0)
    lr: float = Field(3e-4, gt=0, description="peak learning rate (nanoGPT's small-model default)")
    device: str = Field("auto", description="auto (cuda if available, else cpu) | cpu | cuda | cuda:N")
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    optimizer: Literal["adamw", "sgd"] = "adamw"
    betas: tuple[float, float] = (0.9, 0.95)  # GPT-style: a shorter second-moment memory
    eps: float = 1e-8
    momentum: float = 0.9  # sgd only
    weight_decay: float = Field(0.0, ge=0, description="applied to 2-D parameters (matrices) only")
    scheduler: Literal["none", "constant", "linear", "cosine"] = "none"
    warmup_steps: int = Field(0, ge=0)
    min_lr_ratio: float = Field(0.0, ge=0, le=1, description="floor of linear/cosine decay as a fraction of lr")
    grad_clip_norm: float | None = Field(None, gt=0)
    gradient_accumulation_steps: int = Field(1, ge=1)
    use_amp: bool = False
    amp_dtype: Literal["bfloat16", "float16"] = "bfloat16"
    compile_model: bool = False
    compile_mode: CompileMode = "default"
    num_workers: int = Field(0, ge=0, description="data-loading worker processes (caramba.engine.data.workers)")
    pin_memory: bool = Field(False, description="pin host batches (CUDA devices only; elsewhere nothing to pin)")
    prefetch_factor: int = Field(2, ge=1, description="batches each worker reads ahead")
    eval_every: int = Field(0, ge=0, description="evaluate every N steps (and at the end); 0 = only at the end")
    eval_iters: int = Field(20, gt=0, description="validation batches per evaluation")
    save_every: int = Field(0, ge=0, description="checkpoint every N steps (and at the end); 0 = only at the end")
    keep_checkpoints: int = Field(3, ge=1, description="keep the newest K step checkpoints")
    log_every: int = Field(10, gt=0, description="train metrics every N steps")
    deterministic: bool = Field(False, description="torch deterministic algorithms (slower on CUDA)")
    # trainer.upcycle (phase blockwise/global only; see engine/train/upcycle.py)
    teacher_ckpt: str | None = None
    cache_teacher_outputs: bool = False
    dba_init: Literal["svd", "random", "fresh"] = "svd"
    convergence_target: float | None = None
    convergence_patience: int = 100
    convergence_max_steps: int | None = None
    distributed: Literal["none", "ddp", "fsdp"] = Field(
        "none", description="data parallelism (caramba.engine.train.distributed); batch_size is the global batch")
    distributed_backend: Literal["nccl", "gloo"] | None = Field(None, description="None: nccl on CUDA, gloo on CPU")
    activation_checkpointing: bool = Field(False, description="recompute each block's activations in backward")


class LoggingOptions(BaseModel):
    """``defaults.logging``: console, TensorBoard and Weights & Biases."""

    model_config = ConfigDict(extra="forbid")
    instrument: Literal["rich", "plain", "none", "auto"] = "rich"  # rich needs a TTY; otherwise plain lines
    tensorboard: bool = True
    wandb: bool = False
    wandb_project: str | None = None
    wandb_entity: str | None = None
    wandb_mode: Literal["online", "offline", "disabled"] = "online"
    eval_iters: int | None = None
    log_every: int | None = None


def as_dict(obj: Any) -> dict[str, Any]:
    """A pydantic model or mapping as a plain dict without ``None`` values."""
    if obj is None:
        return {}
    if isinstance(obj, BaseModel):
        obj = obj.model_dump()
    if not isinstance(obj, dict):
        raise CarambaError(f"expected a mapping, found {type(obj).__name__}")
    return {k: v for k, v in obj.items() if v is not None}


def _validate(model: type[BaseModel], data: dict[str, Any], where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        loc, err = first_error(e)
        raise CarambaError(f"{where}.{loc}: {err['msg']} (found {err.get('input')!r})",
                           fix=f"fix {where}.{loc} in the manifest (see `caramba validate`)") from None


def _later_default(train: Any, name: str) -> Any:
    """The schema's default for a later-work field (None when ``train`` is a plain dict)."""
    if isinstance(train, BaseModel) and name in type(train).model_fields:
        return type(train).model_fields[name].get_default(call_default_factory=True)
    return None


def resolve_train_options(train: Any, *, runtime: Any = None, logging: Any = None,
                          run_id: str = "?") -> TrainOptions:
    """Merge ``runs[].train`` over ``defaults.runtime``/``defaults.logging`` and check it.

    ``train`` is the manifest's ``TrainConfig`` (or a plain mapping in tests).
    """
    data = as_dict(train)
    data.pop("peft", None)  # applied to the model, not the loop: caramba.engine.train.init_weights
    upcycle = {k: data.pop(k) for k in UPCYCLE_FIELDS if k in data} if data.get("phase", "standard") != "standard" else {}
    for name, feature in LATER_FIELDS.items():
        value = data.pop(name, None)
        if value not in (None, False, {}, [], _later_default(train, name)) and name in UPCYCLE_FIELDS:
            raise CarambaError(f"runs[{run_id}].train.{name} applies only to {feature}",
                               fix=f"set train.phase: blockwise | global with trainer.upcycle, or remove '{name}'")
        if value not in (None, False, {}, [], _later_default(train, name)):
            raise NotImplementedYet(f"runs[{run_id}].train.{name}: {feature} is not implemented yet",
                                    fix=f"remove '{name}' from the run's train config")
    data.update(upcycle)
    merged: dict[str, Any] = {}
    rt, lg = as_dict(runtime), as_dict(logging)
    for key in ("save_every", "keep_checkpoints", "deterministic"):
        if key in rt:
            merged[key] = rt[key]
    for key in ("eval_iters", "log_every"):
        if key in lg:
            merged[key] = lg[key]
    explicit = train.model_fields_set if isinstance(train, BaseModel) else set(data)
    merged.update({k: v for k, v in data.items() if k in explicit or k not in merged})
    return _validate(TrainOptions, merged, f"runs[{run_id}].train")


def resolve_logging(logging: Any) -> LoggingOptions:
    return _validate(LoggingOptions, as_dict(logging), "defaults.logging")
