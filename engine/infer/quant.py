"""Block-wise quantisation of cached key/value vectors (``q8_0``, ``q4_0``) and their sizes.

A cached tensor ``x (..., D)`` is cut along its last dimension into blocks of ``qblock``
values (``D`` is zero-padded up to a multiple of ``qblock``; a vector narrower than ``qblock`` is one
block of its own width); each block stores one fp16
scale and its values as small integers — the llama.cpp ``Q8_0``/``Q4_0`` layouts:

* ``q8_0``: ``scale = absmax / 127``, ``data = round(x / scale)`` as int8 in [-127, 127];
* ``q4_0``: ``scale = absmax / 7``, ``q = round(x / scale)`` in [-8, 7], stored as
  ``q + 8`` nibbles, two per byte (value ``2i`` in the low nibble, ``2i+1`` in the high).

With ``qblock = 32`` and ``D % 32 == 0`` this is bit-for-bit the format of
:func:`caramba.kernels.reference.quantize_kv` (what the fused quantised decode kernel
reads); other block sizes generalise it. ``fp32``/``fp16`` store the values as they are.

:func:`bytes_per_vector` is the exact storage of one vector (data + scales), which is
what the caches' byte accounting multiplies out.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from caramba.engine.errors import CarambaError

CacheKind = Literal["fp32", "fp16", "q8_0", "q4_0"]
KINDS: tuple[str, ...] = ("fp32", "fp16", "q8_0", "q4_0")
_TOP = {"q8_0": 127.0, "q4_0": 7.0}


def check_kind(kind: str, qblock: int) -> None:
    """Raise a clear error for an unknown kind or an unusable block size."""
    if kind not in KINDS:
        raise CarambaError(f"unknown KV-cache kind '{kind}'", fix=f"use one of {', '.join(KINDS)}")
    if qblock < 2 or qblock % 2:
        raise CarambaError(f"qblock must be an even number >= 2, got {qblock}",
                           fix="use qblock: 32 (the llama.cpp block size)")


def block_for(dim: int, qblock: int) -> int:
    """The block actually used: ``qblock``, or the (even-rounded) width of a narrower vector,
    so narrow heads (e.g. DBA's 8-wide keys) are not padded up to a whole block."""
    return qblock if dim >= qblock else dim + dim % 2


def padded_dim(dim: int, qblock: int) -> int:
    return int(math.ceil(dim / qblock) * qblock)


def bytes_per_vector(kind: str, dim: int, qblock: int = 32) -> int:
    """Exact bytes to store one ``dim``-wide vector as ``kind`` (data + fp16 scales)."""
    if kind == "fp32":
        return 4 * dim
    if kind == "fp16":
        return 2 * dim
    qblock = block_for(dim, qblock)
    dp = padded_dim(dim, qblock)
    scales = 2 * (dp // qblock)
    return (dp if kind == "q8_0" else dp // 2) + scales


def quantize(x: torch.Tensor, kind: str, qblock: int = 32) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``x (..., D)`` → ``(data, scales)``; ``scales`` is None for fp32/fp16."""
    if kind == "fp32":
        return x.float(), None
    if kind == "fp16":
        return x.to(torch.float16), None
    *lead, D = x.shape
    qblock = block_for(D, qblock)
    dp = padded_dim(D, qblock)
    xf = x.float()
    if dp != D:
        xf = torch.nn.functional.pad(xf, (0, dp - D))
    blocks = xf.reshape(*lead, dp // qblock, qblock)
    top = _TOP[kind]
    scale = (blocks.abs().amax(-1, keepdim=True) / top).to(torch.float16)
    inv = torch.where(scale == 0, torch.zeros_like(scale, dtype=torch.float32), 1.0 / scale.float())
    low = -top if kind == "q8_0" else -top - 1
    q = torch.round(blocks * inv).clamp(low, top).reshape(*lead, dp)
    if kind == "q8_0":
        return q.to(torch.int8), scale.squeeze(-1)
    u = (q + 8).to(torch.uint8)
    return (u[..., 0::2] | (u[..., 1::2] << 4)).contiguous(), scale.squeeze(-1)


def dequantize(data: torch.Tensor, scales: torch.Tensor | None, kind: str, dim: int,
               qblock: int = 32) -> torch.Tensor:
    """Inverse of :func:`quantize`: fp32 ``(..., dim)``."""
    if kind in ("fp32", "fp16"):
        return data.float()
    if scales is None:
        raise CarambaError(f"{kind} data needs its scales")
    if kind == "q8_0":
        vals = data.float()
    else:
        lo, hi = (data & 0xF).float() - 8, (data >> 4).float() - 8
        vals = torch.stack((lo, hi), -1).flatten(-2)
    *lead, dp = vals.shape
    qblock = block_for(dim, qblock)
    out = (vals.reshape(*lead, dp // qblock, qblock) * scales.float()[..., None]).reshape(*lead, dp)
    return out[..., :dim]


def storage_shape(kind: str, dim: int, qblock: int) -> tuple[tuple[int, torch.dtype], tuple[int, torch.dtype] | None]:
    """(last-dim width, dtype) of the data buffer and of the scales buffer (None: no scales)."""
    if kind == "fp32":
        return (dim, torch.float32), None
    if kind == "fp16":
        return (dim, torch.float16), None
    qblock = block_for(dim, qblock)
    dp = padded_dim(dim, qblock)
    data = (dp, torch.int8) if kind == "q8_0" else (dp // 2, torch.uint8)
    return data, (dp // qblock, torch.float16)
