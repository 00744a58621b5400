"""GraphTopology: named-port DAG over a tensor dict; its validation errors name the node."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from caramba.engine.layers.problems import ConfigError, format_path
from caramba.engine.topology.spec import build_topology


def _graph(nodes: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"type": "GraphTopology", "inputs": {"x": 4}, "nodes": nodes, **extra}


def test_dag_runs_in_dependency_order_and_matches_manual_computation() -> None:
    torch.manual_seed(0)
    g = build_topology(_graph([
        {"id": "sum", "in": ["a", "b"], "out": "s", "op": "Bilinear", "config": {"in1_features": 8, "in2_features": 8,
                                                                                  "out_features": 5}},
        {"id": "pa", "in": "x", "out": "a", "type": "LinearLayer", "d_in": 4, "d_out": 8},
        {"id": "pb", "in": "x", "out": "b", "type": "LinearLayer", "config": {"d_in": 4, "d_out": 8}},
        {"id": "act", "in": "s", "out": "y", "op": "Tanh"},
    ]))
    x = torch.randn(3, 4)
    out = g({"x": x})
    pa, pb, bil = g.layers[1][0].linear, g.layers[2][0].linear, g.layers[0][0].module
    expected = torch.tanh(bil(pa(x), pb(x)))
    torch.testing.assert_close(out["y"], expected)
    assert set(out) == {"x", "a", "b", "s", "y"}
    torch.testing.assert_close(g(x), expected)  # a single tensor goes to the first input, returns the output
    out["y"].sum().backward()
    assert pa.weight.grad is not None and bil.weight.grad is not None


def test_repeat_makes_independent_copies() -> None:
    g = build_topology(_graph([{"id": "mlp", "in": "x", "out": "y", "type": "LinearLayer", "d_in": 4, "d_out": 4,
                                "repeat": 3}]))
    assert len(g.layers[0]) == 3
    w = [m.linear.weight for m in g.layers[0]]
    assert not torch.equal(w[0], w[1])
    x = torch.randn(2, 4)
    expected = g.layers[0][2](g.layers[0][1](g.layers[0][0](x)))
    torch.testing.assert_close(g(x), expected)


def test_multiple_outputs_from_a_tuple() -> None:
    g = build_topology(_graph([
        {"id": "rnn", "in": "x", "out": ["seq", "state"], "op": "GRU",
         "config": {"input_size": 4, "hidden_size": 6, "batch_first": True}},
    ], output="seq"))
    out = g({"x": torch.randn(2, 5, 4)})
    assert out["seq"].shape == (2, 5, 6) and out["state"].shape == (1, 2, 6)


def _problems(raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        build_topology(raw)
    return {format_path(p.path): p.message for p in info.value.problems}


def test_cycle_unknown_port_duplicates_and_widths_are_reported_at_the_node() -> None:
    probs = _problems(_graph([
        {"id": "a", "in": "c", "out": "b", "op": "ReLU"},
        {"id": "b", "in": "b", "out": "c", "op": "ReLU"},
        {"id": "d", "in": "x", "out": "e", "op": "ReLU"},
    ]))
    assert any("cycle through nodes: a, b" in m for m in probs.values())
    probs = _problems(_graph([
        {"id": "a", "in": "nope", "out": "b", "op": "ReLU"},
        {"id": "a", "in": "x", "out": "b", "op": "ReLU"},
    ]))
    assert "reads unknown key 'nope'" in probs["layers[0].in"]
    assert "duplicate node id 'a'" in probs["layers[1].id"]
    assert "already written by node 'a'" in probs["layers[1].out"]
    probs = _problems(_graph([
        {"id": "p", "in": "x", "out": "h", "type": "LinearLayer", "d_in": 5, "d_out": 3},
        {"id": "q", "in": "h", "out": "y", "op": "NotAModule"},
    ]))
    assert "d_in is 5 but the incoming width is 4" in probs["layers[0].d_in"]
    assert "'NotAModule' is not a torch.nn module class" in probs["layers[1].op"]


def test_python_ops_only_when_allowed() -> None:
    raw = _graph([{"id": "f", "in": "x", "out": "y", "op": "python:torch.nn:Softsign"}])
    probs = _problems(raw)
    assert "python implementations are not allowed" in probs["layers[0].impl"]
    g = build_topology(raw, allow_python_impl=True)
    x = torch.randn(2, 4)
    torch.testing.assert_close(g(x), torch.nn.functional.softsign(x))
