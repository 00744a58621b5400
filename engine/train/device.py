"""Device, dtype and mixed-precision choices for a run, decided once up front.

``device: auto`` picks CUDA when available, else CPU. Asking for CUDA on a machine
without it is an error (never a quiet switch to CPU). ``use_amp`` autocasts the forward
pass: on CUDA to ``amp_dtype`` (``float16`` adds a gradient scaler); on CPU only
``bfloat16`` autocast exists, so ``float16`` there is refused.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from caramba.engine.errors import CarambaError
from caramba.engine.train.options import TrainOptions

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_device(name: str) -> torch.device:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` → a device that exists here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise CarambaError(f"unknown device '{name}'", fix="use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CarambaError(f"device '{name}' requested but CUDA is not available on this machine",
                           fix="use --device cpu (or device: auto), or run on a GPU machine")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise CarambaError(f"device '{name}' does not exist (this machine has {torch.cuda.device_count()} GPUs)",
                           fix=f"use cuda:0 … cuda:{torch.cuda.device_count() - 1}")
    if dev.type not in ("cpu", "cuda"):
        raise CarambaError(f"device type '{dev.type}' is not supported", fix="use cpu or cuda")
    return dev


@dataclass
class Precision:
    """How the loop casts: ``autocast()`` context factory and whether a scaler is needed."""

    autocast: Callable[[], contextlib.AbstractContextManager]
    use_scaler: bool
    param_dtype: torch.dtype


def resolve_precision(opts: TrainOptions, device: torch.device) -> Precision:
    param_dtype = DTYPES[opts.dtype]
    if not opts.use_amp:
        return Precision(contextlib.nullcontext, False, param_dtype)
    if param_dtype != torch.float32:
        raise CarambaError(f"use_amp with dtype {opts.dtype}: AMP expects float32 master weights",
                           fix="set dtype: float32 with use_amp: true, or turn use_amp off")
    amp = DTYPES[opts.amp_dtype]
    if device.type == "cpu" and amp == torch.float16:
        raise CarambaError("use_amp with amp_dtype float16 on CPU: CPU autocast supports bfloat16 only",
                           fix="set amp_dtype: bfloat16, or turn use_amp off on CPU")
    if device.type == "cuda" and amp == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise CarambaError("amp_dtype bfloat16 is not supported by this GPU", fix="set amp_dtype: float16")
    return Precision(lambda: torch.autocast(device_type=device.type, dtype=amp),
                     device.type == "cuda" and amp == torch.float16, param_dtype)
