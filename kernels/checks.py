"""Launcher-side validation shared by every Triton kernel.

A kernel launched on bad input either crashes the process or silently computes garbage,
so every launcher checks shapes, dtypes, devices and strides first and raises a
:class:`KernelInputError` that names the operation, the argument, what it got and what
it needs. These are programming errors of the caller (a layer), not user errors, but the
message still says how to fix them.

The checks run on every call, so they are written for the hot path: the common case (all
good) is a few comparisons; the message is only built when a check fails. Launchers
additionally remember the argument signatures that already passed
(:class:`SignatureCache`), so a training loop that calls an op with the same shapes every
step pays one tuple lookup instead of the full checks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Sequence

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
    first: torch.device | None = None
    for t in tensors.values():
        if t is None:
            continue
        if first is None:
            first = t.device
        elif t.device != first:
            listing = ", ".join(f"{k} on {v.device}" for k, v in tensors.items() if v is not None)
            raise fail(op, f"tensors are on different devices ({listing})", "move all inputs to one device")
    assert first is not None, "check_same_device needs at least one tensor"
    if first.type == "cpu" and not INTERPRET:
        raise fail(op, f"the Triton kernel got CPU tensors ({', '.join(devices)})",
                   "call caramba.kernels.ops (it routes CPU tensors to the PyTorch reference) "
                   "or set TRITON_INTERPRET=1 to run the kernel in Triton's interpreter")
    return first


def check_shape(op: str, name: str, t: torch.Tensor, expected: Sequence[int | None], meaning: str) -> None:
    """``expected`` uses None for 'any size'. ``meaning`` spells the layout, e.g. '(B, H, T, D)'."""
    shape = t.shape
    ok = len(shape) == len(expected)
    if ok:
        for e, s in zip(expected, shape):
            if e is not None and e != s:
                ok = False
                break
    if not ok:
        want = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        raise fail(op, f"{name} has shape {tuple(t.shape)}, expected {meaning} = {want}",
                   f"reshape {name} to {meaning}")


def check_last_dim_contiguous(op: str, name: str, t: torch.Tensor) -> None:
    if t.dim() > 0 and t.shape[-1] > 1 and t.stride(-1) != 1:
        raise fail(op, f"{name} has stride {t.stride(-1)} in its last dim (strides {t.stride()})",
                   f"pass {name}.contiguous()")


#: TRITON_INTERPRET=1 at import. Triton reads it when a kernel is defined, so it cannot
#: change for a process's kernels afterwards; read once, not on every call.
INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"


def interpreting() -> bool:
    """Whether Triton kernels run in the interpreter (CPU tensors allowed)."""
    return INTERPRET


class SignatureCache:
    """Per-op memory of argument signatures that passed their checks (bounded).

    ``cache.get(key, compute)`` returns what ``compute()`` returned the first time ``key``
    was seen — typically the launch parameters, computed after the checks passed — and
    raises whatever ``compute`` raises (a failed check is never remembered). Keys must
    capture everything the checks read: shapes, dtypes, devices, last-dim strides, flags.
    """

    def __init__(self, limit: int = 4096) -> None:
        self._store: dict[Hashable, object] = {}
        self._limit = limit

    def get(self, key: Hashable, compute: Callable[[], object]) -> object:
        hit = self._store.get(key, _MISSING)
        if hit is _MISSING:
            hit = compute()
            if len(self._store) >= self._limit:  # many distinct shapes (e.g. generation): start over
                self._store.clear()
            self._store[key] = hit
        return hit


_MISSING = object()
