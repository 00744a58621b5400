"""Width inference and config problems: every problem, each at its exact path."""

from __future__ import annotations

import pytest

from caramba.engine.errors import ConfigProblem
from caramba.engine.topology.spec import Problems, infer_widths, parse_node


def check(raw, in_width):
    problems: list[ConfigProblem] = Problems()
    spec = parse_node(raw, (), problems)
    if spec is not None:
        infer_widths(spec, in_width, problems)
    return {p.path: p for p in problems}


def test_nested_width_mismatch_has_exact_path_and_fix():
    raw = {"type": "stacked", "layers": [
        {"type": "nested", "repeat": 4, "layers": [
            {"type": "residual", "layers": [{"type": "rms_norm", "d_model": 16},
                                            {"type": "attention", "d_model": 16, "n_heads": 4}]},
            {"type": "residual", "layers": [{"type": "rms_norm", "d_model": 32}, {"type": "swiglu", "d_model": 16}]},
        ]},
    ]}
    problems = check(raw, 16)
    assert list(problems) == [("layers", 0, "layers", 1, "layers", 0, "d_model")]  # reported once, not 4×
    p = problems[("layers", 0, "layers", 1, "layers", 0, "d_model")]
    assert p.expected == "16" and p.found == "32" and "d_model: 16" in p.fix


def test_all_problems_collected_at_once():
    raw = {"type": "stacked", "layers": [
        {"type": "RMSNormLyer", "d_model": 8},
        {"type": "attention", "d_model": 8, "n_heads": 3},
        {"type": "linear", "d_in": 8, "d_out": 4},
        {"type": "dense", "d_in": 5, "d_out": 2},
        {"d_model": 8},
        "swiglu",
        {"type": "linear", "d_in": 2, "d_out": 2, "bais": True},
    ]}
    problems = check(raw, 8)
    assert problems[("layers", 0, "type")].fix == "did you mean 'RMSNormLayer'?"
    assert "does not divide d_model 8" in problems[("layers", 1, "n_heads")].message
    assert problems[("layers", 6, "bais")].fix == "did you mean 'bias'?"
    assert problems[("layers", 4, "type")].message == "layer has no 'type'"
    assert ("layers", 5) in problems
    # inference goes on past the invalid attention layer: linear emits 4, dense declares 5
    assert problems[("layers", 3, "d_in")].expected == "4"
    assert len(problems) == 6


def test_missing_field_and_bad_value():
    problems = check({"type": "stacked", "layers": [{"type": "linear", "d_in": 8}, {"type": "dropout", "p": 2}]}, 8)
    assert problems[("layers", 0, "d_out")].message == "missing required field 'd_out'"
    assert problems[("layers", 1, "p")].expected == "< 1.0"


def test_residual_branch_must_keep_width():
    problems = check({"type": "residual", "layers": [{"type": "linear", "d_in": 8, "d_out": 4}]}, 8)
    p = problems[("layers",)]
    assert "changes the width from 8 to 4" in p.message


def test_parallel_sum_needs_equal_widths_and_concat_adds():
    raw = {"type": "parallel", "combine": "sum", "layers": [{"type": "linear", "d_in": 8, "d_out": 4},
                                                            {"type": "linear", "d_in": 8, "d_out": 5}]}
    p = check(raw, 8)[("layers", 1)]
    assert p.expected == "4" and p.found == "5" and "combine: concat" in p.fix
    problems: list[ConfigProblem] = Problems()
    spec = parse_node({**raw, "combine": "concat"}, (), problems)
    assert infer_widths(spec, 8, problems) == 9 and not problems


def test_branching_needs_known_branch_widths():
    problems = check({"type": "branching", "layers": [{"type": "dropout"}]}, None)
    assert ("layers", 0) in problems and ("d_out",) in problems


@pytest.mark.parametrize("raw", [{"type": "stacked", "layers": []}, {"type": "stacked"}])
def test_topology_needs_layers(raw):
    assert ("layers",) in check(raw, 8)
