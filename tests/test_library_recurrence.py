"""CyclicTopology, RecurrentTopology and RNNLayer."""

from __future__ import annotations

import pytest
import torch

from caramba.engine.layers.cache import KVCache
from caramba.engine.layers.problems import ConfigError
from caramba.engine.layers.rnn import RNNLayer
from caramba.engine.topology.spec import build_topology
from caramba.tests.library_fixtures import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")

LIN = {"type": "LinearLayer", "d_in": 6, "d_out": 6}


def test_cyclic_shares_weights_and_applies_them_cycles_times() -> None:
    topo = build_topology({"type": "CyclicTopology", "cycles": 3, "layers": [LIN]})
    assert len(topo.layers) == 1
    x = torch.randn(2, 4, 6, requires_grad=True)
    f = topo.layers[0]
    torch.testing.assert_close(topo(x), f(f(f(x))))
    topo(x).sum().backward()
    assert f.linear.weight.grad is not None
    unshared = build_topology({"type": "CyclicTopology", "cycles": 3, "share_weights": False, "layers": [LIN]})
    assert len(unshared.layers) == 3
    g = unshared.layers
    torch.testing.assert_close(unshared(x), g[2](g[1](g[0](x))))


def test_cyclic_width_must_return_to_itself() -> None:
    with pytest.raises(ConfigError, match="a cycle maps width 6 to 4"):
        build_topology({"type": "CyclicTopology", "cycles": 2, "layers": [{"type": "LinearLayer", "d_in": 6,
                                                                             "d_out": 4}]}, in_width=6)


def test_recurrent_segments_equal_the_full_sequence_for_causal_blocks() -> None:
    torch.manual_seed(0)
    layers = [
        {"type": "ResidualTopology", "layers": [{"type": "RMSNormLayer", "d_model": 16},
                                                {"type": "AttentionLayer", "d_model": 16, "n_heads": 2}]},
        {"type": "ResidualTopology", "layers": [{"type": "SSMLayer", "d_model": 16, "d_state": 4}]},
        {"type": "RNNLayer", "d_in": 16, "d_hidden": 16, "kind": "gru"},
    ]
    full = build_topology({"type": "StackedTopology", "layers": layers}).eval()
    seg = build_topology({"type": "RecurrentTopology", "segment": 5, "layers": layers}).eval()
    seg.load_state_dict(full.state_dict())
    x = torch.randn(2, 17, 16)
    torch.testing.assert_close(seg(x), full(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_rnn_decode_matches_full_and_lstm_matches_manual_cell(kind: str) -> None:
    torch.manual_seed(0)
    layer = RNNLayer(RNNLayer.Config(d_in=3, d_hidden=4, kind=kind)).eval()
    x = torch.randn(2, 7, 3)
    full = layer(x)
    assert full.shape == (2, 7, 4)
    cache = KVCache()
    parts = [layer(x[:, :3], cache=cache)] + [layer(x[:, t:t + 1], cache=cache) for t in range(3, 7)]
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-6, rtol=1e-6)
    if kind == "lstm":
        r = layer.rnn
        h = c = torch.zeros(2, 4)
        outs = []
        for t in range(7):
            gates = x[:, t] @ r.weight_ih_l0.T + r.bias_ih_l0 + h @ r.weight_hh_l0.T + r.bias_hh_l0
            i, f, g, o = gates.chunk(4, -1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        torch.testing.assert_close(full, torch.stack(outs, 1), atol=1e-5, rtol=1e-5)


def test_bidirectional_rnn_refuses_decoding() -> None:
    layer = RNNLayer(RNNLayer.Config(d_in=3, d_hidden=4, bidirectional=True))
    assert layer(torch.randn(1, 5, 3)).shape == (1, 5, 8)
    with pytest.raises(ValueError, match="cannot decode"):
        layer(torch.randn(1, 1, 3), cache=KVCache())
