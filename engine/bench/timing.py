"""Timing that means something: CUDA events on a GPU, a monotonic clock on CPU, and
summaries over repeated measurements (median, p20/p80, min/max).

::

    with Stopwatch(device) as sw:
        model(...)
    sw.seconds
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch


class Stopwatch:
    """Wall time of the enclosed block; on CUDA, measured between two events on the
    current stream (the block's kernels included, host overhead between them too)."""

    def __init__(self, device: torch.device | str) -> None:
        self.cuda = torch.device(device).type == "cuda"
        self.seconds = 0.0

    def __enter__(self) -> Stopwatch:
        if self.cuda:
            self._start = torch.cuda.Event(enable_timing=True)
            self._end = torch.cuda.Event(enable_timing=True)
            self._start.record()
        else:
            self._t0 = time.perf_counter()  # monotonic, highest resolution
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.cuda:
            self._end.record()
            self._end.synchronize()
            self.seconds = self._start.elapsed_time(self._end) / 1000.0
        else:
            self.seconds = time.perf_counter() - self._t0


def quantile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    if len(s) == 1:
        return s[0]
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summarize(name: str, xs: list[float]) -> dict[str, float]:
    """``{name: median, name_p20, name_p80, name_min, name_max}``."""
    return {name: statistics.median(xs), f"{name}_p20": quantile(xs, 0.2), f"{name}_p80": quantile(xs, 0.8),
            f"{name}_min": min(xs), f"{name}_max": max(xs)}


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
