"""RMSNorm, LayerNorm, RoPE, SwiGLU/GEGLU Triton kernels against the PyTorch references.

On CPU these run the real Triton kernels under TRITON_INTERPRET=1 (set by conftest) on
small shapes; on CUDA the same tests run compiled. Widths are odd/prime on purpose (the
kernels mask the tail of a power-of-two block).
"""

from __future__ import annotations

import pytest
import torch

from caramba.kernels import glu, norms, reference, rope
from caramba.kernels.checks import KernelInputError
from caramba.tests.kernels_support import DEVICE, DTYPES, rel_err


def _fp64(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64, device=DEVICE, requires_grad=True)


@pytest.mark.parametrize("C", [7, 37])
def test_layer_norm_gradcheck_fp64(C: int) -> None:
    x, w, b = _fp64(2, 3, C), _fp64(C), _fp64(C)
    assert torch.autograd.gradcheck(lambda x, w, b: norms.layer_norm(x, w, b, 1e-5), (x, w, b), fast_mode=True)


@pytest.mark.parametrize("C", [7, 37])
def test_rms_norm_gradcheck_fp64(C: int) -> None:
    x, w = _fp64(2, 3, C), _fp64(C)
    assert torch.autograd.gradcheck(lambda x, w: norms.rms_norm(x, w, 1e-6), (x, w), fast_mode=True)
    assert torch.autograd.gradcheck(lambda x: norms.rms_norm(x, None, 1e-6), (x,), fast_mode=True)


@pytest.mark.parametrize("dtype,tol", DTYPES)
@pytest.mark.parametrize("is_rms", [True, False])
def test_norms_match_reference_fwd_bwd(dtype: torch.dtype, tol: float, is_rms: bool) -> None:
    N, C = 13, 131  # N > programs of the persistent backward grid: rows are split unevenly
    x = (torch.randn(N, C, device=DEVICE) * 3 + 1).to(dtype).requires_grad_()
    w = torch.randn(C, device=DEVICE).to(dtype).requires_grad_()
    b = torch.randn(C, device=DEVICE).to(dtype).requires_grad_()
    dy = torch.randn(N, C, device=DEVICE).to(dtype)
    if is_rms:
        out, ref = norms.rms_norm(x, w, 1e-6), reference.rms_norm(x.float(), w.float(), 1e-6)
        params = (x, w)
    else:
        out, ref = norms.layer_norm(x, w, b, 1e-5), reference.layer_norm(x.float(), w.float(), b.float(), 1e-5)
        params = (x, w, b)
    assert out.dtype == dtype and out.shape == x.shape
    assert rel_err(out, ref) < tol
    got = torch.autograd.grad(out, params, dy)
    want = torch.autograd.grad(ref, params, dy.float())
    for name, g, r in zip(("dx", "dw", "db"), got, want):
        assert rel_err(g, r) < tol * 4, name


def test_norm_rejects_wrong_weight_shape() -> None:
    x = torch.randn(4, 8, device=DEVICE)
    with pytest.raises(KernelInputError, match=r"weight has shape \(7,\), expected \(C,\)"):
        norms.rms_norm(x, torch.ones(7, device=DEVICE), 1e-6)
    with pytest.raises(KernelInputError, match="dtype torch.int64"):
        norms.layer_norm(torch.ones(4, 8, dtype=torch.long, device=DEVICE), None, None, 1e-5)


@pytest.mark.parametrize("dtype,tol", DTYPES)
@pytest.mark.parametrize("gelu", [False, True])
def test_glu_match_reference_fwd_bwd(dtype: torch.dtype, tol: float, gelu: bool) -> None:
    gate = (torch.randn(3, 5, 211, device=DEVICE) * 2).to(dtype).requires_grad_()
    up = torch.randn(3, 5, 211, device=DEVICE).to(dtype).requires_grad_()
    fn, ref_fn = (glu.geglu, reference.geglu) if gelu else (glu.swiglu, reference.swiglu)
    out, ref = fn(gate, up), ref_fn(gate.float(), up.float())
    assert rel_err(out, ref) < tol
    dy = torch.randn_like(out)
    for g, r in zip(torch.autograd.grad(out, (gate, up), dy), torch.autograd.grad(ref, (gate, up), dy.float())):
        assert rel_err(g, r) < tol * 2


def test_glu_gradcheck_fp64() -> None:
    g, u = _fp64(3, 37), _fp64(3, 37)
    assert torch.autograd.gradcheck(glu.swiglu, (g, u), fast_mode=True)
    assert torch.autograd.gradcheck(glu.geglu, (g, u), fast_mode=True)


def test_glu_rejects_mismatched_halves() -> None:
    with pytest.raises(KernelInputError, match="differ"):
        glu.swiglu(torch.randn(4, 8, device=DEVICE), torch.randn(4, 9, device=DEVICE))


def _tables(T: int, r2: int, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    ang = torch.rand(T, r2, device=DEVICE, dtype=torch.float64) * 6.28
    return ang.cos().to(dtype), ang.sin().to(dtype)


@pytest.mark.parametrize("dtype,tol", DTYPES)
@pytest.mark.parametrize("r2", [6, 4])  # full rotary (D = 12) and partial (R = 8 of 12)
def test_rope_matches_reference_on_strided_input(dtype: torch.dtype, tol: float, r2: int) -> None:
    # (B, T, H, D) projection viewed as (B, H, T, D): non-contiguous, like a layer passes it
    x = torch.randn(2, 7, 3, 12, device=DEVICE).to(dtype).transpose(1, 2).requires_grad_()
    cos, sin = _tables(7, r2)
    out, ref = rope.apply_rope(x, cos, sin), reference.apply_rope(x.float(), cos, sin)
    assert out.is_contiguous() and rel_err(out, ref) < tol
    dy = torch.randn_like(out)
    assert rel_err(torch.autograd.grad(out, x, dy)[0], torch.autograd.grad(ref, x, dy.float())[0]) < tol * 2


def test_rope_gradcheck_fp64_partial() -> None:
    x = _fp64(2, 3, 5, 10)
    cos, sin = _tables(5, 3, torch.float64)
    assert torch.autograd.gradcheck(lambda x: rope.apply_rope(x, cos, sin), (x,), fast_mode=True)


def test_rope_rejects_bad_tables() -> None:
    x = torch.randn(1, 2, 5, 8, device=DEVICE)
    cos, sin = _tables(4, 4)
    with pytest.raises(KernelInputError, match=r"cos has shape \(4, 4\), expected \(T, R/2\)"):
        rope.apply_rope(x, cos, sin)
    cos, sin = _tables(5, 5)
    with pytest.raises(KernelInputError, match="exceeds head dim"):
        rope.apply_rope(x, cos, sin)
