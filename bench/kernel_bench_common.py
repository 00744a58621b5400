"""What every case of ``bench/kernels.py`` is made of: the :class:`Case` record, the timer
(``triton.testing.do_bench``: CUDA events, warm-up first, median / p20 / p80), the peak-memory
probe, and closures for forward+backward, ``torch.compile`` and lazily built providers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import triton

HBM_PEAK = {"H100": 3.35e12, "H200": 4.8e12}  # datasheet bytes/s (SXM)
COLUMNS = ["kernel", "mode", "shape", "provider", "ms_p50", "ms_p20", "ms_p80", "rate", "unit", "pct_peak",
           "speedup_vs", "peak_mem_mb"]


@dataclass
class Case:
    kernel: str
    mode: str  # fwd | fwd+bwd | step
    shape: str
    work: float  # bytes (unit GB/s) or flops (unit TFLOP/s)
    unit: str
    providers: dict[str, Callable[[], object]] = field(default_factory=dict)
    memory: bool = False


def _timeit(fn: Callable[[], object]) -> tuple[float, float, float]:
    p50, p20, p80 = triton.testing.do_bench(fn, warmup=25, rep=100, quantiles=[0.5, 0.2, 0.8])
    return p50, p20, p80


def _peak_mem(fn: Callable[[], object]) -> float:
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def _fb(f: Callable, inputs: list[torch.Tensor], *args, **kw) -> Callable[[], object]:
    """Forward + backward closure (torch.autograd.grad: no .grad accumulation in the timing)."""
    out = f(*inputs, *args, **kw)
    g = torch.randn_like(out) if out.dim() else torch.ones_like(out)
    return lambda: torch.autograd.grad(f(*inputs, *args, **kw), inputs, g)


def _compiled(fn: Callable) -> Callable:
    return torch.compile(fn, dynamic=False)


def _lazy(make: Callable[[], Callable[[], object]]) -> Callable[[], object]:
    """Build a provider on its first call (inside the timing's error report, not at case set-up)."""
    made: list[Callable[[], object]] = []

    def run() -> object:
        if not made:
            made.append(make())
        return made[0]()
    return run
