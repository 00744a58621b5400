"""The dispatch table: which implementation runs each operation on this platform.

Decided once from :data:`~caramba.kernels.platform.PLATFORM`. Per operation there are at
most two implementations, a Triton kernel and the PyTorch reference; the route for a
call depends only on the device of its tensors:

* ``cuda`` with Triton on an sm_80+ GPU -> the Triton kernel;
* ``cpu``, ``mps``, ``meta`` (dry-run), or CUDA with ``CARAMBA_KERNELS=reference``
  -> the PyTorch reference.

There is no try/except anywhere on this path: a kernel that fails raises its own error.
:func:`table` renders one line per operation, marking (``*``) every line whose path is
not the fastest one possible, with the reason; ``caramba kernels`` prints it and the
engine logs it once at start-up (:func:`log_table`).

Triton modules are imported only where they are the fast path: :func:`resolve_all` (called
by :mod:`caramba.kernels.ops` at import on a CUDA machine with Triton) imports them up
front, so ``torch.compile`` never traces an import and each call is a dict lookup; on a
CPU or Apple machine no kernel module is imported (a forced CUDA route in a test imports
its module on first use). The Triton entry points live in :mod:`caramba.kernels.library`
(and ``library_attn``, ``library_loss``): eager calls run the kernels' autograd Functions,
calls traced by ``torch.compile`` run them as opaque ``torch.ops.caramba.*`` custom ops.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from caramba.kernels import reference
from caramba.kernels.platform import PLATFORM, Platform

log = logging.getLogger("caramba.kernels")


@dataclass(frozen=True)
class OpEntry:
    """One operation: its display label, its Triton kernel (``module:function`` or None)."""

    op: str
    label: str
    triton: str | None  # e.g. "caramba.kernels.library:rms_norm"
    triton_desc: str  # what the kernel path is, e.g. "Triton fused fwd+bwd"


OPS: dict[str, OpEntry] = {e.op: e for e in (
    OpEntry("rms_norm", "RMSNorm", "caramba.kernels.library:rms_norm", "Triton fused fwd+bwd"),
    OpEntry("layer_norm", "LayerNorm", "caramba.kernels.library:layer_norm", "Triton fused fwd+bwd"),
    OpEntry("swiglu", "SwiGLU", "caramba.kernels.library:swiglu", "Triton fused fwd+bwd"),
    OpEntry("geglu", "GEGLU", "caramba.kernels.library:geglu", "Triton fused fwd+bwd"),
    OpEntry("apply_rope", "RoPE", "caramba.kernels.library:apply_rope", "Triton fused fwd+bwd"),
    OpEntry("attention", "Attention", "caramba.kernels.library_attn:attention",
            "Triton flash fwd+bwd (GQA, window, decode)"),
    OpEntry("decoupled_attention", "DBA attention", "caramba.kernels.library_attn:decoupled_attention",
            "Triton flash fwd+bwd, sem+geo scores fused"),
    OpEntry("decode_attention_quantized", "QuantKV decode", "caramba.kernels.library_attn:decode_attention_quantized",
            "Triton split-K, q8_0/q4_0 dequant in-kernel"),
    OpEntry("cross_entropy", "CrossEntropy", "caramba.kernels.library_loss:cross_entropy",
            "Triton online-softmax, grad in fwd"),
    OpEntry("linear_cross_entropy", "LinearCE", "caramba.kernels.library_loss:linear_cross_entropy",
            "chunked matmul + Triton CE"),
    OpEntry("selective_scan", "SelectiveScan", "caramba.kernels.library_scan:selective_scan",
            "Triton chunked scan fwd+bwd, softplus/D/silu(z) fused"),
    OpEntry("adamw", "AdamW", "caramba.kernels.adamw:FusedAdamW", "Triton multi-tensor fused step"),
)}

REFERENCE_DESC = "PyTorch reference"


def _reference_fn(op: str) -> Callable[..., Any]:
    if op == "adamw":
        import torch

        return torch.optim.AdamW
    return getattr(reference, op)


_resolved: dict[str, Callable[..., Any]] = {}


def _triton_fn(entry: OpEntry) -> Callable[..., Any]:
    fn = _resolved.get(entry.op)
    if fn is None:
        module, name = entry.triton.split(":")  # type: ignore[union-attr]
        fn = getattr(importlib.import_module(module), name)
        _resolved[entry.op] = fn
    return fn


def resolve_all() -> None:
    """Import every Triton entry point now (kernel modules, custom-op registrations)."""
    for entry in OPS.values():
        if entry.triton is not None:
            _triton_fn(entry)


def uses_triton(op: str, device_type: str, platform: Platform = PLATFORM) -> bool:
    """Whether ``op`` on tensors of ``device_type`` runs the Triton kernel."""
    return device_type == "cuda" and platform.triton_on_device and OPS[op].triton is not None


def route(op: str, device_type: str) -> Callable[..., Any]:
    """The implementation of ``op`` for tensors on ``device_type`` (cuda, cpu, mps, meta)."""
    entry = OPS[op]
    return _triton_fn(entry) if uses_triton(op, device_type) else _reference_fn(op)


def _line(entry: OpEntry, platform: Platform) -> tuple[str, str, str | None]:
    """(label, path, reason-it-is-not-the-fastest or None) for the platform's own device."""
    dev = platform.device
    if uses_triton(entry.op, dev, platform):
        return entry.label, entry.triton_desc, None
    if entry.triton is None:
        return entry.label, REFERENCE_DESC, "no Triton kernel for this op yet"
    if platform.forced_reference:
        return entry.label, REFERENCE_DESC, "CARAMBA_KERNELS=reference"
    if dev == "cuda" and platform.triton_version is None:
        return entry.label, REFERENCE_DESC, "Triton is not installed"
    if dev == "cuda":
        cap = platform.capability or (0, 0)
        return entry.label, REFERENCE_DESC, f"kernels target sm_80+, this GPU is sm_{cap[0]}{cap[1]}"
    if dev == "mps":
        return entry.label, REFERENCE_DESC, "no Metal kernels (out of scope)"
    return entry.label, REFERENCE_DESC, "CPU: Triton kernels need a CUDA GPU"


def table(platform: Platform = PLATFORM) -> list[tuple[str, str, str | None]]:
    """One row per operation: (label, path, reason-not-fastest or None)."""
    return [_line(e, platform) for e in OPS.values()]


def render_table(platform: Platform = PLATFORM) -> str:
    """The table as text, one line per op; ``*`` marks a path that is not the fastest."""
    lines = [f"kernels on {platform.describe()}"]
    for label, path, why in table(platform):
        mark = f"   * not fastest: {why}" if why else ""
        lines.append(f"  {label:<15}{path}{mark}")
    return "\n".join(lines)


_logged = False


def log_table() -> None:
    """Log the table once per process (at INFO on the ``caramba.kernels`` logger)."""
    global _logged
    if not _logged:
        _logged = True
        for line in render_table().splitlines():
            log.info(line)
