"""Fused quantised decode: a decode step over a q8_0/q4_0 ``LayerKVCache`` goes through
``kernels.ops.decode_attention_quantized`` (the dispatch table's QuantKV decode op) and
gives the logits of the dequantise + SDPA path (``CacheSpec(fused_decode=False)``).

On CPU the dispatch picks the PyTorch reference, which computes from the quantised blocks
(per-block scaled dot products, no dequantised copy); a second test forces the Triton
route for that op only and runs the real kernel under ``TRITON_INTERPRET``; a GPU test
does the same on CUDA. Call counters prove the fused path actually ran (otherwise both
sides would trivially agree).
"""

from __future__ import annotations

import pytest
import torch

from caramba.engine.infer import CacheSpec, InferenceCache, lm_logits
from caramba.engine.infer.kvcache import LayerKVCache
from caramba.kernels import dispatch, reference
from caramba.tests.infer_models import dba_attention, one_thread, tiny_lm  # noqa: F401 (autouse)

OP = "decode_attention_quantized"


def _decode_logits(model: torch.nn.Module, ids: torch.Tensor, steps: int, spec: CacheSpec) -> torch.Tensor:
    """Prefill ``ids`` then decode ``steps`` given tokens one at a time; the decode logits (B, steps, V)."""
    cache = InferenceCache(spec)
    P = ids.shape[1] - steps
    lm_logits(model, ids[:, :P], cache)
    return torch.stack([lm_logits(model, ids[:, P + i:P + i + 1], cache)[:, -1] for i in range(steps)], 1)


@pytest.fixture
def count_reference(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = reference.decode_attention_quantized

    def counted(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(reference, OP, counted)
    return calls


@pytest.mark.parametrize("fmt", ["q8_0", "q4_0"])
def test_reference_from_blocks_equals_dequantise_then_sdpa(fmt: str) -> None:
    # strided views of a larger buffer (as the cache hands them over), GQA group of 2, T = 3
    kbuf, vbuf = torch.randn(2, 2, 40, 64), torch.randn(2, 2, 40, 64)
    kd, ks = reference.quantize_kv(kbuf, fmt)
    vd, vs = reference.quantize_kv(vbuf, fmt)
    kd, ks, vd, vs = (t[:, :, :29] for t in (kd, ks, vd, vs))
    assert not kd.is_contiguous()
    q = torch.randn(2, 4, 3, 64)
    got = reference.decode_attention_quantized(q, kd, ks, vd, vs, fmt)
    k, v = reference.dequantize_kv(kd, ks, fmt), reference.dequantize_kv(vd, vs, fmt)
    want = reference.attention(q, k, v, causal=True)
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fmt", ["q8_0", "q4_0"])
def test_model_decode_through_quantised_blocks_equals_dequantised_path(fmt: str, count_reference: list[int]) -> None:
    model = tiny_lm(seed=3)                       # head dim 32: the kernel layout
    ids = torch.randint(0, 64, (2, 26))           # a 20-token prefill (> 16: the ordinary path), 6 decode steps
    fused = _decode_logits(model, ids, 6, CacheSpec(kind=fmt))
    n_layers = 2
    assert len(count_reference) == 6 * n_layers   # every decode step of every layer took the fused op
    count_reference.clear()
    plain = _decode_logits(model, ids, 6, CacheSpec(kind=fmt, fused_decode=False))
    assert count_reference == []
    assert torch.allclose(fused, plain, atol=1e-4, rtol=1e-4)
    # and the quantisation itself is visible (the test is not comparing fp32 with fp32)
    exact = _decode_logits(model, ids, 6, CacheSpec(kind="fp32"))
    assert (fused - exact).abs().max() > 1e-4


def test_fused_path_is_a_capability_check(count_reference: list[int]) -> None:
    """Caches the kernel cannot read keep the dequantise path: fp16, mixed kinds, an fp16
    residual window, DBA's decoupled cache, and a head dim that is not a multiple of 32."""
    ids = torch.randint(0, 64, (1, 10))
    model = tiny_lm(seed=1)
    for spec in (CacheSpec(kind="fp16"), CacheSpec(kind="q8_0", v_kind="q4_0"), CacheSpec(kind="q8_0", residual_len=4)):
        _decode_logits(model, ids, 2, spec)
    _decode_logits(tiny_lm(seed=1, attention=dba_attention()), ids, 2, CacheSpec(kind="q8_0"))
    _decode_logits(tiny_lm(seed=1, n_heads=4), ids, 2, CacheSpec(kind="q8_0"))   # head dim 16
    assert count_reference == []
    c = LayerKVCache("q8_0", "q8_0")
    assert c.fused_decode_format(torch.zeros(1, 2, 1, 32), torch.zeros(1, 2, 1, 32)) == "q8_0"
    assert c.fused_decode_format(torch.zeros(1, 2, 17, 32), torch.zeros(1, 2, 17, 32)) is None  # T > 16


def _force_triton_for_quant_decode(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Route only the quantised decode op to its Triton kernel (interpreted on CPU), counted."""
    from caramba.kernels import quant_decode

    calls: list[int] = []
    real_uses = dispatch.uses_triton

    def counted(*a, **kw):
        calls.append(1)
        return quant_decode.decode_attention_quantized(*a, **kw)

    monkeypatch.setattr(dispatch, "uses_triton", lambda op, dev, *a: op == OP or real_uses(op, dev, *a))
    monkeypatch.setitem(dispatch._resolved, OP, counted)
    return calls


@pytest.mark.parametrize("fmt", ["q8_0", "q4_0"])
def test_model_decode_through_triton_kernel_interpreted(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if torch.cuda.is_available():
        pytest.skip("the interpreter run is the CPU stand-in for the GPU test")
    model = tiny_lm(seed=5, n_layers=1, d_ff=32)
    ids = torch.randint(0, 64, (1, 9))
    plain = _decode_logits(model, ids, 2, CacheSpec(kind=fmt, fused_decode=False))
    calls = _force_triton_for_quant_decode(monkeypatch)
    fused = _decode_logits(model, ids, 2, CacheSpec(kind=fmt))
    assert len(calls) == 3                        # the 7-token prefill (<= 16 queries) and both decode steps
    assert torch.allclose(fused, plain, atol=1e-4, rtol=1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("fmt", ["q8_0", "q4_0"])
def test_model_decode_through_triton_kernel_on_gpu(fmt: str) -> None:
    from caramba.kernels import library_attn

    assert dispatch.route(OP, "cuda") is library_attn.decode_attention_quantized
    model = tiny_lm(seed=5, d_model=128, n_heads=2, vocab=256).cuda()          # head dim 64
    ids = torch.randint(0, 256, (4, 300), device="cuda")
    fused = _decode_logits(model, ids, 8, CacheSpec(kind=fmt))
    plain = _decode_logits(model, ids, 8, CacheSpec(kind=fmt, fused_decode=False))
    assert torch.allclose(fused, plain, atol=2e-3, rtol=2e-3)   # the kernel runs tf32-free fp32 ("ieee")
