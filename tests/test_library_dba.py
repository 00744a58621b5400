"""Decoupled Bottleneck Attention against a naive reference; options; prefill/decode."""

from __future__ import annotations

import math

import pytest
import torch

from caramba.engine.layers.attention_dba import DecoupledAttentionConfig, DecoupledAttentionLayer
from caramba.engine.layers.rope_tables import RopeScaling, inv_frequencies


class _ListCache:
    """A minimal cache of the documented protocol (append -> all, length); K and V widths differ."""

    def __init__(self) -> None:
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    @property
    def length(self) -> int:
        return 0 if self.k is None else self.k.shape[2]

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.k = k if self.k is None else torch.cat([self.k, k], 2)
        self.v = v if self.v is None else torch.cat([self.v, v], 2)
        return self.k, self.v


def _rope_complex(x: torch.Tensor, pos: torch.Tensor, base: float) -> torch.Tensor:
    """Rotate-half RoPE via complex multiplication: pair (x_i, x_{i+D/2}) as x_i + i*x_{i+D/2}."""
    d2 = x.shape[-1] // 2
    theta = base ** (-torch.arange(d2, dtype=torch.float64) * 2 / x.shape[-1])
    rot = torch.polar(torch.ones(len(pos), d2, dtype=torch.float64), pos.double()[:, None] * theta[None])
    z = torch.complex(x[..., :d2].double(), x[..., d2:].double()) * rot
    return torch.cat([z.real, z.imag], -1).to(x.dtype)


def _reference(layer: DecoupledAttentionLayer, x: torch.Tensor, window: int | None = None) -> torch.Tensor:
    c = layer.config
    B, T, _ = x.shape
    H, Hk = c.n_heads, c.kv_heads
    ds, dg, dv = layer.ds, layer.dg, layer.dv
    pos = torch.arange(T)
    qs = layer.q_sem(x).view(B, T, H, ds)
    qg = layer.q_geo(x).view(B, T, H, dg)
    ks = (layer.k_sem or layer.q_sem)(x).view(B, T, -1, ds)
    kg = (layer.k_geo or layer.q_geo)(x).view(B, T, -1, dg)
    v = layer.v_proj(x).view(B, T, Hk, dv)
    out = torch.zeros(B, T, H, dv)
    for h in range(H):
        kh = h // (H // Hk)
        qgh = _rope_complex(qg[:, :, h].unsqueeze(1), pos, c.rope_base)[:, 0]
        kgh = _rope_complex(kg[:, :, kh].unsqueeze(1), pos, c.rope_base)[:, 0]
        s_sem = qs[:, :, h] @ ks[:, :, kh].transpose(1, 2) / math.sqrt(ds)
        s_geo = qgh @ kgh.transpose(1, 2) / math.sqrt(dg)
        if layer.gate is not None:
            g = torch.sigmoid(layer.gate[h])
            s_sem, s_geo = 2 * g * s_sem, 2 * (1 - g) * s_geo
        scores = s_sem + s_geo
        if layer.log_temp is not None:
            scores = scores * torch.exp(layer.log_temp[h])
        i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
        allowed = j <= i
        if window is not None:
            allowed &= j > i - window
        scores = scores.masked_fill(~allowed, float("-inf"))
        vals = v[:, :, kh]
        if layer.k_null is not None:
            null_s = (torch.cat([qs[:, :, h] / math.sqrt(ds), qgh / math.sqrt(dg)], -1) @ layer.k_null[kh])
            scores = torch.cat([null_s[..., None], scores], -1)
            vals = torch.cat([layer.v_null[kh].expand(B, 1, dv), vals], 1)
        out[:, :, h] = torch.softmax(scores, -1) @ vals
    return layer.o_proj(out.reshape(B, T, H * dv))


BASE = dict(d_model=24, n_heads=4, sem_dim=16, geo_dim=8, attn_dim=16)


@pytest.mark.parametrize("extra", [
    {},
    {"n_kv_heads": 2},
    {"n_kv_heads": 1},
    {"tie_qk": True},
    {"null_attn": True},
    {"decoupled_gate": True},
    {"learned_temp": True},
    {"local_window": 3},
    {"q_chunk": 4, "local_window": 5},
    {"bias": True},
])
def test_matches_naive_reference(extra: dict) -> None:
    torch.manual_seed(0)
    layer = DecoupledAttentionLayer(DecoupledAttentionConfig(**BASE, **extra))
    with torch.no_grad():  # move the learned mixes off their neutral init so the test sees them
        for p in (layer.gate, layer.log_temp, layer.v_null):
            if p is not None:
                p.normal_()
    x = torch.randn(2, 11, 24)
    torch.testing.assert_close(layer(x), _reference(layer, x, window=extra.get("local_window")), atol=2e-5, rtol=2e-5)


def test_shape_and_gradients() -> None:
    torch.manual_seed(0)
    layer = DecoupledAttentionLayer(DecoupledAttentionConfig(**BASE, null_attn=True, decoupled_gate=True, learned_temp=True))
    x = torch.randn(2, 9, 24, requires_grad=True)
    y = layer(x)
    assert y.shape == (2, 9, 24)
    y.square().sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_q_chunk_equals_unchunked() -> None:
    torch.manual_seed(0)
    a = DecoupledAttentionLayer(DecoupledAttentionConfig(**BASE, null_attn=True))
    b = DecoupledAttentionLayer(DecoupledAttentionConfig(**BASE, null_attn=True, q_chunk=3))
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 10, 24)
    torch.testing.assert_close(a(x), b(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("extra", [{}, {"null_attn": True, "n_kv_heads": 2}, {"local_window": 4, "q_chunk": 2}])
def test_prefill_then_decode_matches_full(extra: dict) -> None:
    torch.manual_seed(0)
    layer = DecoupledAttentionLayer(DecoupledAttentionConfig(**BASE, rope_semantic=True, **extra)).eval()
    x = torch.randn(2, 12, 24)
    full = layer(x)
    cache = _ListCache()
    parts = [layer(x[:, :5], cache=cache)]
    for t in range(5, 12):
        parts.append(layer(x[:, t : t + 1], cache=cache))
    assert cache.length == 12
    assert cache.k.shape[-1] == 4 + 2 and cache.v.shape[-1] == 4  # the bottleneck is what gets cached
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-5, rtol=1e-5)


def test_llama3_rope_scaling_matches_transformers() -> None:
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    scaling = RopeScaling(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=64)
    cfg = LlamaConfig(hidden_size=64, num_attention_heads=2, rope_theta=10000.0, max_position_embeddings=256,
                      rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                    "high_freq_factor": 4.0, "original_max_position_embeddings": 64})
    ref, _ = ROPE_INIT_FUNCTIONS["llama3"](cfg, "cpu")
    torch.testing.assert_close(inv_frequencies(32, 10000.0, scaling), ref.float(), atol=1e-7, rtol=1e-6)
    assert not torch.allclose(inv_frequencies(32, 10000.0), ref.float())


def test_config_errors_name_the_field() -> None:
    from caramba.engine.layers.base import FieldError
    from pydantic import ValidationError

    cases = [({"sem_dim": 10}, "sem_dim"), ({"geo_dim": 12}, "geo_dim"), ({"n_kv_heads": 3}, "n_kv_heads"),
             ({"tie_qk": True, "n_kv_heads": 2}, "tie_qk"), ({"null_attn": True, "local_window": 4}, "null_attn")]
    for extra, field in cases:
        with pytest.raises(ValidationError) as info:
            DecoupledAttentionConfig(**{**BASE, **extra})
        err = info.value.errors()[0]["ctx"]["error"]
        assert isinstance(err, FieldError) and err.field == field
    # d_model need not be a multiple of n_heads in DBA (the standard check is replaced)
    DecoupledAttentionConfig(d_model=30, n_heads=4, sem_dim=16, geo_dim=8, attn_dim=16)


def test_attention_layer_dispatches_decoupled_mode() -> None:
    """In a fresh interpreter (nothing imported by hand) the registry finds mode: decoupled."""
    import subprocess
    import sys

    code = ("from caramba.engine.layers.attention import AttentionLayer\n"
            "print(AttentionLayer.resolve({'mode': 'decoupled'}).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "DecoupledAttentionLayer"


def test_decode_through_the_engine_kv_cache_set() -> None:
    """The shared KVCache set (the one models are called with) stores DBA's narrow keys."""
    from caramba.engine.layers.cache import KVCache

    torch.manual_seed(0)
    layer = DecoupledAttentionLayer(DecoupledAttentionConfig(**BASE, n_kv_heads=2)).eval()
    x = torch.randn(1, 7, 24)
    full = layer(x)
    cache = KVCache()
    parts = [layer(x[:, :3], cache=cache)] + [layer(x[:, t : t + 1], cache=cache) for t in range(3, 7)]
    assert cache.length == 7
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-5, rtol=1e-5)
