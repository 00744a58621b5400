"""KV cache: prefill + incremental decode reproduces the full-sequence forward."""

from __future__ import annotations

import pytest
import torch

from caramba.engine.layers.attention import AttentionLayer
from caramba.engine.layers.cache import KVCache, LayerKVCache, layer_cache_for
from caramba.engine.systems.build import build_system
from caramba.tests.support.model_configs import tiny_lm_config


@pytest.mark.parametrize("fields", [
    {"d_model": 16, "n_heads": 4},
    {"d_model": 16, "n_heads": 4, "n_kv_heads": 2, "mode": "gqa", "window": 4},
    {"d_model": 16, "n_heads": 2, "rope": False},
])
def test_attention_prefill_then_decode_matches_full(fields):
    torch.manual_seed(0)
    layer = AttentionLayer(AttentionLayer.Config(**fields)).eval()
    x = torch.randn(2, 11, 16)
    full = layer(x)
    cache = LayerKVCache()
    parts = [layer(x[:, :6], cache=cache)]
    for t in range(6, 11):
        parts.append(layer(x[:, t : t + 1], cache=cache))
    assert cache.length == 11
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)


def test_language_model_decode_with_cache_set_matches_full():
    torch.manual_seed(0)
    system = build_system({"ref": "system.language_model", "config": tiny_lm_config(n_layers=2, n_kv_heads=2)}).eval()
    ids = torch.randint(0, 64, (2, 10))
    full = system({"input_ids": ids})["logits"]
    cache = KVCache()
    steps = [system({"input_ids": ids[:, :4]}, cache=cache)["logits"]]
    for t in range(4, 10):
        steps.append(system({"input_ids": ids[:, t : t + 1]}, cache=cache)["logits"])
    assert len(cache) == 2 and cache.length == 10  # one layer cache per attention layer
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-4, rtol=1e-4)


def test_layer_kv_cache_grows_and_stores_fp32():
    cache = LayerKVCache()
    k = torch.randn(1, 2, 20, 4, dtype=torch.float64)
    k_all, v_all = cache.append(k, k + 1)
    assert cache.length == 20 and k_all.dtype == torch.float64
    k_all, v_all = cache.append(k[:, :, :30 - 20], k[:, :, :10])
    assert k_all.shape == (1, 2, 30, 4) and cache._k.dtype == torch.float32
    torch.testing.assert_close(k_all[:, :, :20], k.float().double())
    with pytest.raises(ValueError, match="fresh cache"):
        cache.append(torch.randn(3, 2, 1, 4), torch.randn(3, 2, 1, 4))


def test_layer_cache_for_rejects_other_objects():
    layer = torch.nn.Identity()
    assert layer_cache_for(None, layer) is None
    single = LayerKVCache()
    assert layer_cache_for(single, layer) is single
    cset = KVCache()
    assert layer_cache_for(cset, layer) is cset.for_layer(layer)
    with pytest.raises(TypeError, match="KVCache-like"):
        layer_cache_for(object(), layer)
