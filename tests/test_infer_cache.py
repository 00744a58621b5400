"""Typed KV caches: exact against the fp32 reference / the kernels' quantiser, byte
accounting, residual window, truncate; q8_0 decoding stays close to fp16."""

from __future__ import annotations

import pytest
import torch

from caramba.engine.errors import CarambaError
from caramba.engine.infer import CacheSpec, InferenceCache, lm_logits, predict_cache_bytes
from caramba.engine.infer.kvcache import KVTensor
from caramba.engine.infer.quant import bytes_per_vector, dequantize, quantize
from caramba.kernels.reference import dequantize_kv, quantize_kv
from caramba.tests.infer_models import dba_attention, one_thread, tiny_lm  # noqa: F401 (autouse)


@pytest.mark.parametrize("fmt", ["q8_0", "q4_0"])
def test_quantize_matches_kernel_reference_layout(fmt: str) -> None:
    x = torch.randn(2, 3, 5, 64)
    data, scales = quantize(x, fmt, 32)
    ref_data, ref_scales = quantize_kv(x, fmt)
    assert torch.equal(data, ref_data) and torch.equal(scales, ref_scales)
    assert torch.equal(dequantize(data, scales, fmt, 64, 32), dequantize_kv(ref_data, ref_scales, fmt))


@pytest.mark.parametrize("fmt,bound", [("q8_0", 1 / 127), ("q4_0", 1 / 7)])
def test_quantize_error_bound_with_padding(fmt: str, bound: float) -> None:
    x = torch.randn(4, 2, 7, 24)                       # 24 is not a multiple of the block: padded
    data, scales = quantize(x, fmt, 16)
    back = dequantize(data, scales, fmt, 24, 16)
    blocks = torch.nn.functional.pad(x, (0, 8)).reshape(4, 2, 7, 2, 16).abs().amax(-1)
    amax = blocks.repeat_interleave(16, -1)[..., :24]
    # half a quantisation step, plus fp16 rounding of the scale
    assert ((back - x).abs() <= amax * bound * 0.5 * 1.01 + 1e-6).all()
    assert data.numel() * data.element_size() + scales.numel() * 2 == 4 * 2 * 7 * bytes_per_vector(fmt, 24, 16)


def test_residual_window_and_truncate_and_bytes() -> None:
    t = KVTensor("q8_0", qblock=32, residual_len=4)
    x = torch.randn(1, 2, 10, 32)
    t.append(x[:, :, :3])
    t.append(x[:, :, 3:10])
    out = t.read()
    assert out.shape == (1, 2, 10, 32)
    assert torch.equal(out[:, :, 6:], x[:, :, 6:].half().float())    # last 4 kept in fp16
    assert not torch.equal(out[:, :, :6], x[:, :, :6])                 # older ones quantised
    assert t.nbytes == 2 * (6 * bytes_per_vector("q8_0", 32) + 4 * 2 * 32)
    t.truncate(8)
    assert t.length == 8 and torch.equal(t.read(), out[:, :, :8])
    t.truncate(3)
    assert t.length == 3 and torch.equal(t.read(), out[:, :, :3])
    with pytest.raises(CarambaError, match="truncate"):
        t.truncate(5)


@pytest.mark.parametrize("attention", [None, "dba"])
def test_fp32_cache_decode_equals_full_forward(attention: str | None) -> None:
    model = tiny_lm(attention=dba_attention() if attention else None)
    ids = torch.randint(0, 64, (2, 12))
    full = lm_logits(model, ids)
    cache = InferenceCache(CacheSpec(kind="fp32"))
    with torch.no_grad():
        parts = [lm_logits(model, ids[:, :7], cache)] + [lm_logits(model, ids[:, i:i + 1], cache) for i in range(7, 12)]
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("attention", [None, "dba"])
def test_q8_logits_close_to_fp16_and_bytes_exact(attention: str | None) -> None:
    """The stated bound: q8_0 decode logits within 0.05 (max abs) of fp16-cache logits,
    where the logits' own scale is ~1; q4_0 is visibly worse but bounded too."""
    model = tiny_lm(attention=dba_attention() if attention else None)
    ids = torch.randint(0, 64, (1, 40))
    out, caches = {}, {}
    for kind in ("fp16", "q8_0", "q4_0"):
        spec = CacheSpec(kind=kind, qblock=16)        # DBA's 16-wide key heads: no padding
        cache = InferenceCache(spec)
        with torch.no_grad():
            lm_logits(model, ids[:, :32], cache)
            out[kind] = torch.cat([lm_logits(model, ids[:, i:i + 1], cache) for i in range(32, 40)], 1)
        caches[kind] = cache
        assert cache.nbytes == predict_cache_bytes(model, spec, 40, 1)
        assert cache.nbytes == sum(r["bytes"] for r in cache.layer_bytes())
    err8 = (out["q8_0"] - out["fp16"]).abs().max().item()
    err4 = (out["q4_0"] - out["fp16"]).abs().max().item()
    assert err8 < 0.05, err8
    assert err8 < err4 < 1.0
    assert caches["q8_0"].nbytes < caches["fp16"].nbytes / 1.7 and caches["q4_0"].nbytes < caches["q8_0"].nbytes / 1.7
    if attention:
        assert set(caches["fp16"].layer_bytes()[0]["tensors"]) == {"k_sem", "k_geo", "v"}


def test_dba_per_tensor_kinds() -> None:
    model = tiny_lm(attention=dba_attention())
    spec = CacheSpec(kind="fp16", k_sem_kind="q4_0")
    cache = InferenceCache(spec)
    with torch.no_grad():
        lm_logits(model, torch.randint(0, 64, (1, 20)), cache)
    row = cache.layer_bytes()[0]["tensors"]
    assert row["k_sem"] == 2 * 20 * bytes_per_vector("q4_0", 16) and row["k_geo"] == 2 * 20 * 2 * 16
    assert cache.nbytes == predict_cache_bytes(model, spec, 20, 1)


def test_bad_kind_is_a_clear_error() -> None:
    with pytest.raises(CarambaError, match="qblock"):
        KVTensor("q4_0", qblock=7)
    with pytest.raises(CarambaError, match="unknown KV-cache kind"):
        KVTensor("q3")
