"""The launchers' per-signature memory of checks and launch parameters.

Launchers skip their input checks for an argument signature that already passed; these
tests pin that the memory never lets a bad call through: a failed check is not remembered,
and any change the checks look at (shape, dtype, device, last-dim stride, window) is a new
signature that is checked again.
"""

from __future__ import annotations

import pytest
import torch

from caramba.kernels import glu, norms, reference, rope
from caramba.kernels.checks import KernelInputError, SignatureCache
from caramba.kernels.flash import attention
from caramba.tests.kernels_support import DEVICE


def test_signature_cache_remembers_results_not_failures() -> None:
    cache, calls = SignatureCache(limit=2), []

    def ok() -> int:
        calls.append(1)
        return len(calls)

    assert cache.get("a", ok) == 1 and cache.get("a", ok) == 1 and len(calls) == 1

    def bad() -> None:
        calls.append(1)
        raise KernelInputError("x: bad", fix="f")

    for _ in range(2):
        with pytest.raises(KernelInputError):
            cache.get("b", bad)
    assert len(calls) == 3  # the failure was checked again, not remembered
    cache.get("c", ok), cache.get("d", ok)  # over the limit: starts over, still answers
    assert cache.get("a", ok) == 6


def test_norm_checks_still_fire_after_a_good_call() -> None:
    x, w = torch.randn(4, 9, device=DEVICE), torch.randn(9, device=DEVICE)
    torch.testing.assert_close(norms.rms_norm(x, w, 1e-6), reference.rms_norm(x, w, 1e-6), rtol=1e-5, atol=1e-5)
    for _ in range(2):
        with pytest.raises(KernelInputError, match=r"weight has shape \(8,\)"):
            norms.rms_norm(x, torch.randn(8, device=DEVICE), 1e-6)
    with pytest.raises(KernelInputError, match="x has dtype torch.int64"):
        norms.rms_norm(x.long(), None, 1e-6)
    y = norms.rms_norm(x.t().contiguous().t(), w, 1e-6)  # a strided x of the same shape: copied, same result
    torch.testing.assert_close(y, reference.rms_norm(x, w, 1e-6), rtol=1e-5, atol=1e-5)


def test_attention_and_rope_checks_keyed_on_everything_they_read() -> None:
    q = torch.randn(1, 2, 8, 16, device=DEVICE)
    attention(q, q, q, causal=True)
    with pytest.raises(KernelInputError, match="k is torch.float64 but q is torch.float32"):
        attention(q, q.double(), q.double(), causal=True)
    with pytest.raises(KernelInputError, match="window=0"):
        attention(q, q, q, causal=True, window=0)
    strided = torch.randn(1, 2, 16, 8, device=DEVICE).transpose(-1, -2)  # same shape as q, last-dim stride 8
    with pytest.raises(KernelInputError, match="k has stride 8 in its last dim"):
        attention(q, strided, q, causal=True)
    cos = torch.randn(8, 4, device=DEVICE)
    rope.apply_rope(q, cos, cos)
    with pytest.raises(KernelInputError, match="cos/sin require grad"):
        rope.apply_rope(q, cos.clone().requires_grad_(), cos)
    with pytest.raises(KernelInputError, match=r"sin has shape \(8, 3\)"):
        rope.apply_rope(q, cos, cos[:, :3])
    g = torch.randn(3, 5, device=DEVICE)
    glu.swiglu(g, g)
    with pytest.raises(KernelInputError, match="differ"):
        glu.swiglu(g, g.double())
