"""Flash attention (and its DBA variant) Triton kernels against the PyTorch reference.

Covers: causal and not, GQA/MQA, ragged (non-multiple-of-tile) lengths, decode (T < S)
with and without split-K, sliding window, head dims that are not powers of two, Dv != D, strided (transposed)
inputs, forward and all gradients. CPU runs the same kernels under the interpreter with
16x16 tiles; the GPU-marked tests add bf16/fp16 at real head dims.
"""

from __future__ import annotations

import pytest
import torch

from caramba.kernels import flash, reference
from caramba.kernels.checks import KernelInputError
from caramba.tests.kernels_support import DEVICE, rel_err

CASES = [  # B, H, Hkv, T, S, D, causal, window
    (1, 2, 2, 19, 19, 16, False, None),   # plain, ragged length
    (1, 4, 2, 19, 19, 16, True, None),    # GQA causal
    (2, 4, 1, 5, 37, 24, True, None),     # MQA decode-ish (T < S), D not a power of two
    (1, 2, 1, 33, 33, 16, True, 7),       # sliding window, causal
    (1, 2, 1, 20, 33, 16, False, 5),      # window without causality, T < S
    (1, 2, 1, 3, 150, 16, True, None),    # decode: few query tiles -> split-K over the keys
    (1, 2, 2, 2, 150, 16, False, 40),     # split-K where one split sees no allowed key
]


def _inputs(B, H, Hkv, T, S, D, dtype, dv=None):
    dv = dv or D
    q = torch.randn(B, T, H, D, device=DEVICE).to(dtype).transpose(1, 2)  # strided like a layer's view
    k = torch.randn(B, Hkv, S, D, device=DEVICE).to(dtype)
    v = torch.randn(B, Hkv, S, dv, device=DEVICE).to(dtype)
    return [t.requires_grad_() for t in (q, k, v)]


def _compare(out, ref, inputs, tol_fwd, tol_bwd):
    assert out.shape == ref.shape and out.dtype == inputs[0].dtype
    assert rel_err(out, ref) < tol_fwd
    do = torch.randn_like(out)
    got = torch.autograd.grad(out, inputs, do)
    want = torch.autograd.grad(ref, inputs, do.to(ref.dtype))
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape
        assert rel_err(g, w) < tol_bwd, f"grad {i}"


@pytest.mark.parametrize("B,H,Hkv,T,S,D,causal,window", CASES)
def test_flash_attention_fp32_matches_reference(B, H, Hkv, T, S, D, causal, window) -> None:
    q, k, v = _inputs(B, H, Hkv, T, S, D, torch.float32)
    out = flash.attention(q, k, v, causal=causal, window=window)
    ref = reference.attention(q, k, v, causal=causal, window=window)
    _compare(out, ref, (q, k, v), 1e-5, 1e-5)


def test_flash_attention_dv_differs_and_custom_scale() -> None:
    q, k, v = _inputs(1, 2, 1, 9, 17, 16, torch.float32, dv=8)
    out = flash.attention(q, k, v, causal=True, scale=0.3)
    _compare(out, reference.attention(q, k, v, causal=True, scale=0.3), (q, k, v), 1e-5, 1e-5)


def test_flash_attention_gradcheck_fp64() -> None:
    q, k, v = (t.detach().double().requires_grad_() for t in _inputs(1, 2, 1, 5, 7, 4, torch.float32))
    fn = lambda q, k, v: flash.attention(q, k, v, causal=True, window=4)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (q, k, v), fast_mode=True)


@pytest.mark.parametrize("causal", [True, False])
def test_dba_attention_fused_scores_match_reference(causal: bool) -> None:
    q, k, v = _inputs(1, 4, 2, 19, 19, 16, torch.float32, dv=24)
    qg = torch.randn(1, 4, 19, 8, device=DEVICE, requires_grad=True)
    kg = torch.randn(1, 2, 19, 8, device=DEVICE, requires_grad=True)
    out = flash.decoupled_attention(q, k, qg, kg, v, causal=causal)
    ref = reference.decoupled_attention(q, k, qg, kg, v, causal=causal)
    _compare(out, ref, (q, k, v, qg, kg), 1e-5, 1e-5)


def test_attention_rejects_bad_inputs() -> None:
    q, k, v = _inputs(1, 3, 2, 4, 4, 16, torch.float32)
    with pytest.raises(KernelInputError, match="not a multiple"):
        flash.attention(q, k, v, causal=True)
    q, k, v = _inputs(1, 2, 2, 8, 4, 16, torch.float32)
    with pytest.raises(KernelInputError, match="T=8 exceeds key length S=4"):
        flash.attention(q, k, v, causal=True)
    q, k, v = _inputs(1, 2, 2, 4, 4, 16, torch.float32)
    with pytest.raises(KernelInputError, match="is torch.float16 but q is torch.float32"):
        flash.attention(q, k.half(), v, causal=True)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("D", [64, 128])
@pytest.mark.parametrize("causal,window,T,S", [(True, None, 1000, 1000), (False, None, 777, 777),
                                                (True, 256, 1000, 1000), (True, None, 1, 1537)])
def test_flash_attention_gpu_half_precision(dtype, D, causal, window, T, S) -> None:
    q, k, v = _inputs(2, 8, 2, T, S, D, dtype)
    out = flash.attention(q, k, v, causal=causal, window=window)
    qf, kf, vf = (t.detach().float().requires_grad_() for t in (q, k, v))
    ref = reference.attention(qf, kf, vf, causal=causal, window=window)
    assert rel_err(out, ref) < 1e-2
    do = torch.randn_like(out)
    for g, w in zip(torch.autograd.grad(out, (q, k, v), do), torch.autograd.grad(ref, (qf, kf, vf), do.float())):
        assert rel_err(g, w) < 2e-2


@pytest.mark.parametrize("fmt,qerr", [("q8_0", 0.01), ("q4_0", 0.15)])
def test_quantized_kv_decode_matches_dequantized_reference(fmt: str, qerr: float) -> None:
    from caramba.kernels import quant_decode

    k, v = torch.randn(2, 2, 150, 64, device=DEVICE), torch.randn(2, 2, 150, 64, device=DEVICE)
    q = torch.randn(2, 4, 3, 64, device=DEVICE)
    kd, ks = reference.quantize_kv(k, fmt)
    vd, vs = reference.quantize_kv(v, fmt)
    assert rel_err(reference.dequantize_kv(kd, ks, fmt), k) < qerr  # the format itself is sane
    out = quant_decode.decode_attention_quantized(q, kd, ks, vd, vs, fmt)
    assert rel_err(out, reference.decode_attention_quantized(q, kd, ks, vd, vs, fmt)) < 1e-5
    with pytest.raises(KernelInputError, match="k_scales has shape"):
        quant_decode.decode_attention_quantized(q, kd, ks[..., :1], vd, vs, fmt)
