"""OpGraphLayer: attention written as ops equals AttentionLayer (full and decode)."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from caramba.engine.layers.attention import AttentionLayer
from caramba.engine.layers.cache import KVCache
from caramba.engine.layers.op_graph import OpGraphLayer
from caramba.tests.library_fixtures import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")

PROGRAM = [
    {"op": "linear", "in": "x", "out": "qkv", "weight": "qkv"},
    {"op": "split", "in": "qkv", "out": ["q", "k", "v"], "sizes": [16, 16, 16]},
    {"op": "heads", "in": "q", "out": "qh", "n": 4},
    {"op": "heads", "in": "k", "out": "kh", "n": 4},
    {"op": "heads", "in": "v", "out": "vh", "n": 4},
    {"op": "rope", "in": "qh", "out": "qr"},
    {"op": "rope", "in": "kh", "out": "kr"},
    {"op": "kv_cache", "in": ["kr", "vh"], "out": ["ka", "va"]},
    {"op": "sdpa", "in": ["qr", "ka", "va"], "out": "yh", "causal": True},
    {"op": "merge_heads", "in": "yh", "out": "y"},
    {"op": "linear", "in": "y", "out": "out", "weight": "o"},
]


def _pair() -> tuple[OpGraphLayer, AttentionLayer]:
    torch.manual_seed(0)
    g = OpGraphLayer(OpGraphLayer.Config(d_model=16, params={"qkv": [48, 16], "o": [16, 16]}, ops=PROGRAM))
    a = AttentionLayer(AttentionLayer.Config(d_model=16, n_heads=4))
    with torch.no_grad():
        g.weights["qkv"].copy_(torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]))
        g.weights["o"].copy_(a.o_proj.weight)
    return g, a


def test_op_graph_attention_equals_attention_layer_and_has_grads() -> None:
    g, a = _pair()
    x = torch.randn(2, 9, 16, requires_grad=True)
    torch.testing.assert_close(g(x), a(x), atol=1e-5, rtol=1e-5)
    g(x).sum().backward()
    assert g.weights["qkv"].grad.abs().sum() > 0 and x.grad is not None


def test_op_graph_decode_with_cache_matches_full() -> None:
    g, _ = _pair()
    x = torch.randn(1, 8, 16)
    full = g(x)
    cache = KVCache()
    parts = [g(x[:, :5], cache=cache)] + [g(x[:, t:t + 1], cache=cache) for t in range(5, 8)]
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bad, message", [
    ([{"op": "linear", "in": "nope", "out": "y", "weight": "o"}], "reads 'nope' before any op writes it"),
    ([{"op": "frobnicate", "in": "x", "out": "y"}], "unknown op 'frobnicate'"),
    ([{"op": "silu", "in": "x", "out": "x"}], "writes 'x' a second time"),
    ([{"op": "linear", "in": "x", "out": "out", "weight": "w9"}], "param 'w9'"),
])
def test_program_errors(bad: list, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        OpGraphLayer.Config(d_model=16, params={"o": [16, 16]}, ops=bad)
