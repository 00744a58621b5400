"""SSMLayer: the fast CPU scan agrees with the definition (values and gradients); decode matches full sequence."""

from __future__ import annotations

import pytest
import torch

from caramba.engine.layers.ssm import SSMConfig, SSMLayer, SSMState
from caramba.kernels.scan_ref import selective_scan, selective_scan_sequential


def _inputs(B: int = 2, T: int = 37, Di: int = 6, N: int = 5, dtype: torch.dtype = torch.float32):
    g = torch.Generator().manual_seed(0)
    u = torch.randn(B, T, Di, generator=g)
    delta = torch.randn(B, T, Di, generator=g)
    A = -torch.rand(Di, N, generator=g) * 2
    Bm, Cm = torch.randn(B, T, N, generator=g), torch.randn(B, T, N, generator=g)
    D = torch.randn(Di, generator=g)
    extra = dict(z=torch.randn(B, T, Di, generator=g), delta_bias=torch.randn(Di, generator=g) * 0.5,
                 state=torch.randn(B, Di, N, generator=g))
    return [t.to(dtype) for t in (u, delta, A, Bm, Cm, D)], {k: v.to(dtype) for k, v in extra.items()}


@pytest.mark.parametrize("options", ["plain", "softplus", "all"])
def test_fast_cpu_scan_matches_definition(options: str) -> None:
    args, extra = _inputs()
    kw = {} if options == "plain" else {"delta_softplus": True}
    if options == "all":
        kw.update(extra)
    if options == "plain":
        args[1] = torch.nn.functional.softplus(args[1])
    y_ref, h_ref = selective_scan_sequential(*args, **kw, return_state=True)
    y, h = selective_scan(*args, **kw, return_state=True)
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
    y = selective_scan(u, delta, A, Bm, Cm)
    torch.testing.assert_close(y.view(-1), torch.tensor(expected), atol=1e-5, rtol=1e-5)


def test_fast_cpu_scan_gradcheck_fp64() -> None:
    """The hand-written backward (every input, the initial state and the final state's grad)."""
    args, extra = _inputs(B=2, T=7, Di=3, N=2, dtype=torch.float64)
    names = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias", "state"]
    ins = [t.clone().requires_grad_(True) for t in args + [extra["z"], extra["delta_bias"], extra["state"]]]

    def f(*t: torch.Tensor):
        return selective_scan(*t[:6], z=t[6], delta_bias=t[7], delta_softplus=True, state=t[8], return_state=True)
    assert torch.autograd.gradcheck(f, ins), names


def test_fast_cpu_scan_gradients_match_definition() -> None:
    args, extra = _inputs(T=12)
    ins = [t.clone().requires_grad_(True) for t in args + [extra["z"], extra["delta_bias"], extra["state"]]]
    outs = []
    for fn in (selective_scan_sequential, selective_scan):
        y, h = fn(*ins[:6], z=ins[6], delta_bias=ins[7], delta_softplus=True, state=ins[8], return_state=True)
        outs.append(torch.autograd.grad(y.square().sum() + h.sum(), ins))
    for name, a, b in zip(["u", "delta", "A", "B", "C", "D", "z", "bias", "state"], *outs):
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4, msg=name)


def test_layer_shape_grad_and_scan_modes_agree() -> None:
    torch.manual_seed(0)
    layer = SSMLayer(SSMConfig(d_model=16, d_state=4, d_conv=3, expand=2))
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


@pytest.mark.parametrize("chunk", [1, 8, 64])
def test_parallel_associative_scan_matches_definition_values_and_gradients(chunk: int) -> None:
    """The chunked log-depth scan computes the same function as the sequential definition:
    outputs, final state and every gradient (incl. through the carried state and the z gate)."""
    from caramba.kernels.scan_parallel import selective_scan_parallel

    args, extra = _inputs(T=29)
    ref_in = [t.clone().requires_grad_(True) for t in args]
    par_in = [t.clone().requires_grad_(True) for t in args]
    y_ref, h_ref = selective_scan_sequential(*ref_in, **extra, delta_softplus=True, return_state=True)
    y, h = selective_scan_parallel(*par_in, **extra, delta_softplus=True, return_state=True, chunk=chunk)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h, h_ref, atol=1e-5, rtol=1e-5)
    w = torch.randn_like(y_ref)
    g_ref = torch.autograd.grad((y_ref * w).sum() + h_ref.sum(), ref_in)
    g = torch.autograd.grad((y * w).sum() + h.sum(), par_in)
    for name, a, b in zip(("u", "delta", "A", "B", "C", "D"), g, g_ref):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4, msg=lambda m, n=name: f"grad {n}: {m}")


def test_layer_parallel_scan_equals_auto_scan() -> None:
    torch.manual_seed(2)
    auto = SSMLayer(SSMConfig(d_model=16, d_state=4, d_conv=3, expand=2))
    par = SSMLayer(SSMConfig(d_model=16, d_state=4, d_conv=3, expand=2, scan="parallel", scan_chunk=5))
    par.load_state_dict(auto.state_dict())
    x = torch.randn(2, 23, 16)
    torch.testing.assert_close(par(x), auto(x), atol=1e-5, rtol=1e-5)
