"""What this machine can run, detected once at import.

The dispatch table (:mod:`caramba.kernels.dispatch`) reads :data:`PLATFORM` to decide,
per operation, whether the Triton kernel or the PyTorch reference implements it. Nothing
here changes after import: a process has one platform for its whole life.

    >>> from caramba.kernels.platform import PLATFORM
    >>> PLATFORM.describe()
    'cuda (NVIDIA H100 80GB HBM3, sm_90), triton 3.6.0, bf16 yes'

``CARAMBA_KERNELS=reference`` forces the PyTorch reference everywhere (used to measure
"kernels off" end to end, and to bisect a numerical difference); any other value is an
error, so a typo never silently changes the path.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Literal

import torch

from caramba.engine.errors import CarambaError

DeviceKind = Literal["cuda", "mps", "cpu"]


@dataclass(frozen=True)
class Platform:
    """The detected platform. ``capability`` is ``(major, minor)`` on CUDA, else None."""

    device: DeviceKind
    device_name: str
    capability: tuple[int, int] | None
    triton_version: str | None
    bf16: bool
    interpreter: bool  # TRITON_INTERPRET=1: Triton kernels run on the CPU through numpy
    forced_reference: bool  # CARAMBA_KERNELS=reference

    @property
    def triton_on_device(self) -> bool:
        """True when Triton kernels are this platform's fast path (CUDA, sm_80 or newer)."""
        return (self.device == "cuda" and self.triton_version is not None and not self.forced_reference
                and self.capability is not None and self.capability >= (8, 0))

    def describe(self) -> str:
        where = self.device
        if self.device == "cuda" and self.capability:
            where += f" ({self.device_name}, sm_{self.capability[0]}{self.capability[1]})"
        tri = f"triton {self.triton_version}" if self.triton_version else "triton absent"
        if self.interpreter:
            tri += " (interpreter)"
        forced = ", CARAMBA_KERNELS=reference" if self.forced_reference else ""
        return f"{where}, {tri}, bf16 {'yes' if self.bf16 else 'no'}{forced}"


def _forced_reference() -> bool:
    value = os.environ.get("CARAMBA_KERNELS", "").strip().lower()
    if value in ("", "auto"):
        return False
    if value == "reference":
        return True
    raise CarambaError(
        f"CARAMBA_KERNELS={value!r} is not a kernel mode",
        fix="unset CARAMBA_KERNELS (fastest path for this platform) or set CARAMBA_KERNELS=reference",
    )


def detect() -> Platform:
    """Probe the machine. Cheap: no kernel is compiled, no memory is allocated."""
    triton_version = None
    if importlib.util.find_spec("triton") is not None:
        import triton

        triton_version = triton.__version__
    interpreter = os.environ.get("TRITON_INTERPRET", "0") == "1"
    if torch.cuda.is_available():
        cap = torch.cuda.get_device_capability()
        return Platform("cuda", torch.cuda.get_device_name(), cap, triton_version,
                        torch.cuda.is_bf16_supported(), interpreter, _forced_reference())
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return Platform("mps", "Apple GPU", None, triton_version, True, interpreter, _forced_reference())
    return Platform("cpu", "cpu", None, triton_version, True, interpreter, _forced_reference())


#: the platform of this process, detected once.
PLATFORM: Platform = detect()
