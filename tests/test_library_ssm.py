"""SSMLayer: the parallel scan agrees with the reference loop; decode matches full sequence."""

from __future__ import annotations

import pytest
import torch

from caramba.engine.layers.ssm import SSMConfig, SSMLayer, SSMState
from caramba.engine.layers.ssm_scan import selective_scan_chunked, selective_scan_sequential


def _inputs(B: int = 2, T: int = 37, Di: int = 6, N: int = 5):
    g = torch.Generator().manual_seed(0)
    u = torch.randn(B, T, Di, generator=g)
    delta = torch.nn.functional.softplus(torch.randn(B, T, Di, generator=g))
    A = -torch.rand(Di, N, generator=g) * 2
    Bm, Cm = torch.randn(B, T, N, generator=g), torch.randn(B, T, N, generator=g)
    D = torch.randn(Di, generator=g)
    return u, delta, A, Bm, Cm, D


@pytest.mark.parametrize("chunk", [1, 5, 16, 64])
def test_parallel_scan_matches_sequential(chunk: int) -> None:
    args = _inputs()
    y_ref, h_ref = selective_scan_sequential(*args)
    y, h = selective_scan_chunked(*args, chunk=chunk)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h, h_ref, atol=1e-5, rtol=1e-5)


def test_scan_matches_closed_form_for_scalar_case() -> None:
    # One channel, one state, constant a = exp(delta*A): h_t = sum_s a^(t-s) * delta*B*u_s
    T = 6
    u = torch.arange(1.0, T + 1).view(1, T, 1)
    delta = torch.full((1, T, 1), 0.5)
    A = torch.tensor([[-0.4]])
    Bm = torch.ones(1, T, 1)
    Cm = torch.ones(1, T, 1)
    a = torch.exp(torch.tensor(0.5 * -0.4))
    expected = [sum(float(a) ** (t - s) * 0.5 * (s + 1) for s in range(t + 1)) for t in range(T)]
    y, _ = selective_scan_chunked(u, delta, A, Bm, Cm, chunk=4)
    torch.testing.assert_close(y.view(-1), torch.tensor(expected), atol=1e-5, rtol=1e-5)


def test_scan_gradients_agree() -> None:
    args = [t.clone().requires_grad_(True) for t in _inputs(T=12)]
    y1, _ = selective_scan_sequential(*args)
    g1 = torch.autograd.grad(y1.square().sum(), args)
    y2, _ = selective_scan_chunked(*args, chunk=4)
    g2 = torch.autograd.grad(y2.square().sum(), args)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_layer_shape_grad_and_scan_modes_agree() -> None:
    torch.manual_seed(0)
    layer = SSMLayer(SSMConfig(d_model=16, d_state=4, d_conv=3, expand=2, chunk=8))
    x = torch.randn(2, 21, 16, requires_grad=True)
    y = layer(x)
    assert y.shape == (2, 21, 16)
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    seq = SSMLayer(SSMConfig(d_model=16, d_state=4, d_conv=3, expand=2, scan="sequential"))
    seq.load_state_dict(layer.state_dict())
    torch.testing.assert_close(seq(x), layer(x), atol=1e-5, rtol=1e-5)


def test_prefill_then_decode_matches_full_sequence() -> None:
    torch.manual_seed(1)
    layer = SSMLayer(SSMConfig(d_model=8, d_state=4, d_conv=4, bias=True)).eval()
    x = torch.randn(2, 13, 8)
    full = layer(x)
    state = SSMState()
    parts = [layer(x[:, :7], cache=state)]
    for t in range(7, 13):
        parts.append(layer.step(x[:, t], state)[:, None])
    assert state.length == 13
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="dt_min"):
        SSMConfig(d_model=8, dt_min=0.5, dt_max=0.1)
    with pytest.raises(ValueError):
        SSMConfig(d_model=8, unknown_field=1)
    assert SSMConfig(d_model=40).rank == 3


def test_decode_through_the_engine_kv_cache_set() -> None:
    """A model-level KVCache hands each SSMLayer its own SSMState (make_layer_cache)."""
    from caramba.engine.layers.cache import KVCache

    torch.manual_seed(2)
    a = SSMLayer(SSMConfig(d_model=8, d_state=4)).eval()
    b = SSMLayer(SSMConfig(d_model=8, d_state=4)).eval()
    x = torch.randn(1, 9, 8)
    full = b(a(x))
    cache = KVCache()
    parts = [b(a(x[:, :4], cache=cache), cache=cache)]
    parts += [b(a(x[:, t : t + 1], cache=cache), cache=cache) for t in range(4, 9)]
    assert isinstance(cache.for_layer(a), SSMState) and cache.for_layer(a) is not cache.for_layer(b)
    assert cache.length == 9
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-5, rtol=1e-5)
