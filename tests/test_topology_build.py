"""Topologies: shapes, gradients and semantics against hand-composed references."""

from __future__ import annotations

import pytest
import torch

from caramba.engine.layers.problems import ConfigError
from caramba.engine.topology.spec import build_topology

NORM = {"type": "rms_norm", "d_model": 8}
LIN = {"type": "linear", "d_in": 8, "d_out": 8}

CASES = [
    ({"type": "stacked", "layers": [NORM, LIN]}, 8),
    ({"type": "sequential", "layers": [LIN, {"type": "dropout", "p": 0.1}, {"type": "linear", "d_in": 8, "d_out": 3}]}, 3),
    ({"type": "residual", "layers": [NORM, {"type": "attention", "d_model": 8, "n_heads": 2}]}, 8),
    ({"type": "nested", "repeat": 3, "layers": [{"type": "residual", "layers": [NORM, {"type": "swiglu", "d_model": 8}]}]}, 8),
    ({"type": "parallel", "combine": "sum", "layers": [LIN, {"type": "dense", "d_in": 8, "d_out": 8}]}, 8),
    ({"type": "parallel", "combine": "concat", "layers": [LIN, {"type": "linear", "d_in": 8, "d_out": 5}]}, 13),
    ({"type": "branching", "layers": [LIN, {"type": "glu", "d_model": 8, "d_ff": 6}]}, 8),
    ({"type": "branching", "d_out": 4, "layers": [{"type": "linear", "d_in": 8, "d_out": 3}, LIN]}, 4),
]


@pytest.mark.parametrize(("raw", "out"), CASES, ids=[f"{c[0]['type']}-{i}" for i, c in enumerate(CASES)])
def test_topology_shape_and_gradients(raw, out):
    torch.manual_seed(0)
    module = build_topology(raw, in_width=8)
    x = torch.randn(2, 5, 8, requires_grad=True)
    y = module(x)
    assert y.shape == (2, 5, out)
    y.pow(2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_residual_is_x_plus_branch():
    torch.manual_seed(0)
    res = build_topology({"type": "residual", "layers": [NORM, LIN]}, in_width=8)
    x = torch.randn(3, 8)
    norm, lin = res.layers
    torch.testing.assert_close(res(x), x + lin(norm(x)))


def test_parallel_combines_and_branching_fuses():
    torch.manual_seed(0)
    x = torch.randn(2, 8)
    for combine, fn in [("sum", lambda a, b: a + b), ("mean", lambda a, b: (a + b) / 2),
                        ("concat", lambda a, b: torch.cat([a, b], -1))]:
        par = build_topology({"type": "parallel", "combine": combine, "layers": [LIN, LIN]}, in_width=8)
        a, b = par.layers
        torch.testing.assert_close(par(x), fn(a(x), b(x)))
    br = build_topology({"type": "branching", "d_out": 6, "layers": [LIN, {"type": "linear", "d_in": 8, "d_out": 2}]},
                        in_width=8)
    a, b = br.layers
    assert br.fuse.weight.shape == (6, 10)
    torch.testing.assert_close(br(x), br.fuse(torch.cat([a(x), b(x)], -1)))


def test_nested_repeat_builds_independent_copies_in_order():
    torch.manual_seed(0)
    nested = build_topology({"type": "nested", "repeat": 3, "layers": [LIN, NORM]}, in_width=8)
    assert len(nested.layers) == 6
    w = [nested.layers[i].linear.weight for i in (0, 2, 4)]
    assert w[0] is not w[1] and not torch.equal(w[0], w[1])
    x = torch.randn(2, 8)
    ref = x
    for layer in nested.layers:
        ref = layer(ref)
    torch.testing.assert_close(nested(x), ref)


def test_python_impl_refused_unless_allowed():
    raw = {"type": "stacked", "layers": [{"impl": "python:caramba.tests.support.model_impls:ScaleBy", "factor": 3.0}]}
    with pytest.raises(ConfigError) as info:
        build_topology(raw, in_width=4)
    p = info.value.problems[0]
    assert p.path == ("layers", 0, "impl") and "not allowed" in p.message and "allow_python_impl" in p.fix
    module = build_topology(raw, in_width=4, allow_python_impl=True)
    x = torch.randn(2, 4)
    torch.testing.assert_close(module(x), 3.0 * x)


def test_python_impl_bad_constructor_arguments_are_a_problem():
    raw = {"type": "stacked", "layers": [{"impl": "python:caramba.tests.support.model_impls:ScaleBy", "factr": 3}]}
    with pytest.raises(ConfigError) as info:
        build_topology(raw, in_width=4, allow_python_impl=True)
    (p,) = info.value.problems
    assert p.path == ("layers", 0) and "factr" in p.message and "factor" in p.fix


@pytest.mark.parametrize(("impl", "words"), [
    ("caramba.tests.support.model_impls:ScaleBy", "python:module:Symbol"),
    ("python:caramba.tests.support.no_such_module:X", "cannot import module"),
    ("python:caramba.tests.support.model_impls:Missing", "has no attribute 'Missing'"),
    ("python:caramba.tests.support.model_impls:NOT_A_MODULE", "not a torch.nn.Module class"),
])
def test_python_impl_errors_are_clear(impl, words):
    with pytest.raises(ConfigError) as info:
        build_topology({"type": "stacked", "layers": [NORM, {"impl": impl}]}, in_width=8, allow_python_impl=True)
    assert [p.path for p in info.value.problems] == [("layers", 1, "impl")]
    assert words in info.value.problems[0].message
