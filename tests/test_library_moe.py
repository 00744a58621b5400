"""MoELayer: sparse dispatch equals a dense reference; aux losses; temperature schedule."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from caramba.engine.layers.moe import MoEConfig, MoELayer


def _dense_reference(layer: MoELayer, x: torch.Tensor) -> torch.Tensor:
    """Run every expert on every token, then pick the top-k by hand."""
    c = layer.config
    flat = x.reshape(-1, c.d_model)
    probs = torch.softmax(flat @ layer.router.weight.T, -1).detach()
    outs = []
    for e in range(c.num_experts):
        h = F.silu(flat @ layer.w_gate[e]) * (flat @ layer.w_up[e])
        outs.append(h @ layer.w_down[e])
    allout = torch.stack(outs, 1)  # (n, E, d)
    y = torch.zeros_like(flat)
    for n in range(flat.shape[0]):
        order = sorted(range(c.num_experts), key=lambda e: -float(probs[n, e]))[: c.top_k]
        z = sum(float(probs[n, e]) for e in order)
        for e in order:
            y[n] += probs[n, e] / z * allout[n, e]
    return y.reshape(x.shape)


def test_matches_dense_reference_and_shapes() -> None:
    torch.manual_seed(0)
    layer = MoELayer(MoEConfig(d_model=12, d_ff=20, num_experts=5, top_k=2))
    x = torch.randn(3, 7, 12)
    y = layer(x)
    assert y.shape == x.shape
    torch.testing.assert_close(y, _dense_reference(layer, x), atol=1e-5, rtol=1e-5)


def test_gradients_reach_router_and_experts() -> None:
    torch.manual_seed(0)
    layer = MoELayer(MoEConfig(d_model=8, d_ff=16, num_experts=4, top_k=2, bias=True))
    x = torch.randn(2, 9, 8, requires_grad=True)
    loss = layer(x).square().mean() + sum(layer.aux_losses().values())
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert layer.router.weight.grad.abs().sum() > 0
    assert layer.w_gate.grad.abs().sum() > 0 and layer.w_down.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", ["kl", "mse", "switch"])
def test_aux_loss_values(kind: str) -> None:
    torch.manual_seed(0)
    layer = MoELayer(MoEConfig(d_model=6, d_ff=8, num_experts=4, top_k=1, aux_loss={"type": kind, "weight": 0.5}))
    x = torch.randn(50, 6)
    layer(x)
    probs = torch.softmax(x @ layer.router.weight.T, -1).detach()
    mean_p = probs.mean(0)
    load = torch.bincount(probs.argmax(-1), minlength=4).float() / 50
    expected = {
        "kl": sum(0.25 * math.log(0.25 / float(p)) for p in mean_p),
        "mse": 4 * float(((mean_p - 0.25) ** 2).sum()),
        "switch": 4 * float((load * mean_p).sum()),
    }[kind]
    got = layer.aux_losses()["moe_load_balance"]
    assert abs(float(got.detach()) - 0.5 * expected) < 1e-5


def test_balanced_router_has_zero_kl() -> None:
    layer = MoELayer(MoEConfig(d_model=4, d_ff=4, num_experts=4, top_k=2))
    with torch.no_grad():
        layer.router.weight.zero_()
    layer(torch.randn(10, 4))
    assert float(layer.aux_losses()["moe_load_balance"].detach()) == pytest.approx(0.0, abs=1e-7)


def test_temperature_schedule_and_validation() -> None:
    layer = MoELayer(MoEConfig(d_model=4, d_ff=4, num_experts=2, top_k=1, temperature=2.0,
                               temperature_end=1.0, temperature_steps=4))
    assert layer.current_temperature() == 2.0
    for _ in range(2):
        layer(torch.randn(3, 4))
    assert layer.current_temperature() == pytest.approx(1.5)
    for _ in range(5):
        layer(torch.randn(3, 4))
    assert layer.current_temperature() == pytest.approx(1.0)
    assert int(layer.state_dict()["step"]) == 7
    with pytest.raises(ValueError, match="top_k"):
        MoEConfig(d_model=4, d_ff=4, num_experts=2, top_k=3)
