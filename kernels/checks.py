"""Launcher-side validation shared by every Triton kernel.

A kernel launched on bad input either crashes the process or silently computes garbage,
so every launcher checks shapes, dtypes, devices and strides first and raises a
:class:`KernelInputError` that names the operation, the argument, what it got and what
it needs. These are programming errors of the caller (a layer), not user errors, but the
message still says how to fix them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from caramba.engine.errors import CarambaError

#: dtypes every elementwise/norm kernel accepts (fp64 for gradcheck on the interpreter).
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


class KernelInputError(CarambaError):
    """A Triton kernel was called with tensors it cannot process."""


def fail(op: str, message: str, fix: str) -> KernelInputError:
    return KernelInputError(f"{op}: {message}", fix=fix)


def check_dtype(op: str, name: str, t: torch.Tensor, allowed: Sequence[torch.dtype] = FLOAT_DTYPES) -> None:
    if t.dtype not in allowed:
        names = ", ".join(str(d).removeprefix("torch.") for d in allowed)
        raise fail(op, f"{name} has dtype {t.dtype}", f"pass {name} as one of: {names}")


def check_same_device(op: str, **tensors: torch.Tensor | None) -> torch.device:
    present = {k: v for k, v in tensors.items() if v is not None}
    devices = {k: v.device for k, v in present.items()}
    first = next(iter(devices.values()))
    if any(d != first for d in devices.values()):
        listing = ", ".join(f"{k} on {d}" for k, d in devices.items())
        raise fail(op, f"tensors are on different devices ({listing})", "move all inputs to one device")
    if first.type == "cpu" and not interpreting():
        raise fail(op, f"the Triton kernel got CPU tensors ({', '.join(devices)})",
                   "call caramba.kernels.ops (it routes CPU tensors to the PyTorch reference) "
                   "or set TRITON_INTERPRET=1 to run the kernel in Triton's interpreter")
    return first


def check_shape(op: str, name: str, t: torch.Tensor, expected: Sequence[int | None], meaning: str) -> None:
    """``expected`` uses None for 'any size'. ``meaning`` spells the layout, e.g. '(B, H, T, D)'."""
    ok = t.dim() == len(expected) and all(e is None or e == s for e, s in zip(expected, t.shape))
    if not ok:
        want = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        raise fail(op, f"{name} has shape {tuple(t.shape)}, expected {meaning} = {want}",
                   f"reshape {name} to {meaning}")


def check_last_dim_contiguous(op: str, name: str, t: torch.Tensor) -> None:
    if t.dim() > 0 and t.shape[-1] > 1 and t.stride(-1) != 1:
        raise fail(op, f"{name} has stride {t.stride(-1)} in its last dim (strides {t.stride()})",
                   f"pass {name}.contiguous()")


def interpreting() -> bool:
    import os

    return os.environ.get("TRITON_INTERPRET", "0") == "1"
