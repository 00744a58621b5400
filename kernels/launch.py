"""Small launch helpers shared by the Triton launchers (no kernels here)."""

from __future__ import annotations

import functools

import torch
import triton.language as tl


def compute_dtype(dtype: torch.dtype):
    """The in-kernel accumulation type: fp64 for fp64 inputs (gradcheck), else fp32."""
    return tl.float64 if dtype == torch.float64 else tl.float32


@functools.lru_cache(maxsize=None)
def _sm_count(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def num_programs(device: torch.device) -> int:
    """Programs for a persistent grid: one per SM on CUDA, a handful under the interpreter."""
    if device.type == "cuda":
        return _sm_count(device.index if device.index is not None else torch.cuda.current_device())
    return 4


def tl_dtype(dtype: torch.dtype):
    """The Triton element type of a torch dtype."""
    return {torch.float16: tl.float16, torch.bfloat16: tl.bfloat16, torch.float32: tl.float32,
            torch.float64: tl.float64}[dtype]
