"""Layers against independent references written here (not the ops they call)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from caramba.engine.layers.attention import AttentionLayer
from caramba.engine.layers.dense import DenseLayer
from caramba.engine.layers.glu import GLULayer
from caramba.engine.layers.linear import LinearLayer
from caramba.engine.layers.norms import LayerNormLayer, RMSNormLayer
from caramba.engine.layers.rope import rope_tables
from caramba.engine.layers.swiglu import SwiGLULayer
from caramba.kernels import ops


def make(cls, **fields):
    return cls(cls.Config(**fields))


def naive_attention(x, layer, causal=True, window=None, rope=False, base=10000.0):
    """softmax(Q K^T / sqrt(D) + mask) V with K/V heads repeated, in float64."""
    B, T, C = x.shape
    H, Hkv, D = layer.n_heads, layer.n_kv, layer.head_dim
    x = x.double()
    q = (x @ layer.q_proj.weight.double().T).view(B, T, H, D).transpose(1, 2)
    k = (x @ layer.k_proj.weight.double().T).view(B, T, Hkv, D).transpose(1, 2)
    v = (x @ layer.v_proj.weight.double().T).view(B, T, Hkv, D).transpose(1, 2)
    if rope:
        q, k = complex_rope(q, base), complex_rope(k, base)
    k = torch.cat([k[:, [h // (H // Hkv)]] for h in range(H)], dim=1)
    v = torch.cat([v[:, [h // (H // Hkv)]] for h in range(H)], dim=1)
    scores = q @ k.transpose(-1, -2) / math.sqrt(D)
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    mask = torch.zeros(T, T, dtype=torch.bool)
    if causal:
        mask |= j > i
    if window is not None:
        mask |= j <= i - window
    scores = scores.masked_fill(mask, float("-inf"))
    y = scores.softmax(-1) @ v  # (B, H, T, D)
    y = y.transpose(1, 2).reshape(B, T, C)
    return y @ layer.o_proj.weight.double().T


def complex_rope(x, base):
    """RoPE as complex multiplication: pair (x_i, x_{i+D/2}) times e^{i·p·θ_i}."""
    D = x.shape[-1]
    half = D // 2
    theta = base ** (-torch.arange(half, dtype=torch.float64) * 2 / D)
    pos = torch.arange(x.shape[-2], dtype=torch.float64)
    rot = torch.polar(torch.ones(len(pos), half, dtype=torch.float64), torch.outer(pos, theta))
    z = torch.complex(x[..., :half].double(), x[..., half:].double()) * rot
    return torch.cat([z.real, z.imag], dim=-1)


@pytest.mark.parametrize("causal", [True, False])
def test_attention_matches_naive_softmax(causal):
    torch.manual_seed(0)
    layer = make(AttentionLayer, d_model=24, n_heads=3, causal=causal, rope=False)
    x = torch.randn(2, 7, 24)
    torch.testing.assert_close(layer(x).double(), naive_attention(x, layer, causal=causal), atol=1e-5, rtol=1e-5)


def test_gqa_matches_repeated_heads_with_rope_and_window():
    torch.manual_seed(1)
    layer = make(AttentionLayer, d_model=32, n_heads=4, n_kv_heads=2, mode="gqa", window=3)
    x = torch.randn(2, 9, 32)
    ref = naive_attention(x, layer, causal=True, window=3, rope=True)
    torch.testing.assert_close(layer(x).double(), ref, atol=1e-5, rtol=1e-5)
    assert layer.k_proj.weight.shape == (2 * 8, 32)  # only n_kv_heads K heads


def test_rope_tables_match_complex_rotation():
    torch.manual_seed(2)
    x = torch.randn(1, 2, 5, 8)
    cos, sin = rope_tables(0, 5, 8, 500.0, "cpu")
    torch.testing.assert_close(ops.apply_rope(x, cos, sin).double(), complex_rope(x, 500.0), atol=1e-6, rtol=1e-6)
    # an offset start is the same rotation as the tail of a longer table (decode positions)
    cos3, sin3 = rope_tables(3, 2, 8, 500.0, "cpu")
    torch.testing.assert_close(cos3, cos[3:])
    torch.testing.assert_close(sin3, sin[3:])


def test_rms_norm_formula():
    torch.manual_seed(3)
    layer = make(RMSNormLayer, d_model=10, eps=1e-6)
    with torch.no_grad():
        layer.weight.copy_(torch.linspace(0.5, 2.0, 10))
    x = torch.randn(3, 4, 10)
    ref = x / torch.sqrt((x * x).mean(-1, keepdim=True) + 1e-6) * layer.weight
    torch.testing.assert_close(layer(x), ref)


def test_layer_norm_formula():
    torch.manual_seed(4)
    layer = make(LayerNormLayer, d_model=6)
    with torch.no_grad():
        layer.weight.uniform_(0.5, 1.5)
        layer.bias.uniform_(-1, 1)
    x = torch.randn(2, 3, 6) * 3 + 1
    mu, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=False, keepdim=True)
    torch.testing.assert_close(layer(x), (x - mu) / torch.sqrt(var + 1e-5) * layer.weight + layer.bias)


def test_swiglu_and_glu_formulas():
    torch.manual_seed(5)
    x = torch.randn(2, 3, 8)
    sw = make(SwiGLULayer, d_model=8, d_ff=12)
    g, u = (x @ sw.gate_up.weight.T).split(12, dim=-1)
    torch.testing.assert_close(sw(x), (g * torch.sigmoid(g) * u) @ sw.down.weight.T)
    for act, fn in [("gelu", lambda t: F.gelu(t, approximate="tanh")), ("sigmoid", torch.sigmoid),
                    ("relu", torch.relu), ("silu", F.silu)]:
        glu = make(GLULayer, d_model=8, d_ff=5, activation=act)
        g, u = (x @ glu.gate_up.weight.T).split(5, dim=-1)
        torch.testing.assert_close(glu(x), (fn(g) * u) @ glu.out.weight.T)


def test_swiglu_default_hidden_is_llama_rule():
    assert SwiGLULayer.Config(d_model=512).hidden == 1408  # 8/3·512 = 1365.3 → 1408 (multiple of 64)


def test_dense_and_linear():
    torch.manual_seed(6)
    x = torch.randn(4, 5)
    d = make(DenseLayer, d_in=5, d_out=3, activation="tanh")
    torch.testing.assert_close(d(x), torch.tanh(x @ d.linear.weight.T + d.linear.bias))
    lin = make(LinearLayer, d_in=5, d_out=2, bias=False)
    assert lin.linear.bias is None
    torch.testing.assert_close(lin(x), x @ lin.linear.weight.T)
