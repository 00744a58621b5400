"""Systems: mlp_classifier, build_system's spec handling, python impl gate, aux losses."""

from __future__ import annotations

import pytest
import torch

from caramba.engine.errors import CarambaError
from caramba.engine.layers.problems import ConfigError
from caramba.engine.registry import UnknownComponent
from caramba.engine.systems.build import build_system, check_system
from caramba.engine.systems.mlp_classifier import MLPClassifierSystem
from caramba.engine.systems.registry import SYSTEMS
from caramba.tests.support.model_configs import tiny_lm_config

MLP = "system.mlp_classifier"


def test_mlp_classifier_shapes_and_learns_a_separable_task():
    torch.manual_seed(0)
    system = build_system({"ref": MLP, "config": {"d_in": 6, "hidden": [16], "n_classes": 3, "dropout": 0.1}})
    centers = torch.randn(3, 6) * 3
    y = torch.randint(0, 3, (96,))
    x = centers[y] + 0.3 * torch.randn(96, 6)
    opt = torch.optim.Adam(system.parameters(), lr=3e-2)
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(system({"x": x})["logits"], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    system.eval()
    logits = system({"x": x})["logits"]
    assert logits.shape == (96, 3)
    assert (logits.argmax(-1) == y).float().mean() > 0.95
    types = [c.type for c in system.describe().children[0].children]
    assert types == ["DenseLayer", "DropoutLayer", "LinearLayer"]


def test_mlp_classifier_config_problems():
    problems = {p.path: p for p in MLPClassifierSystem.check_config(
        {"d_in": 4, "hidden": [8, -2], "n_classes": 1, "activaton": "relu"})}
    assert problems[("n_classes",)].expected == ">= 2"
    assert problems[("activaton",)].fix == "did you mean 'activation'?"
    problems = {p.path: p for p in MLPClassifierSystem.check_config({"d_in": 4, "hidden": [8, -2], "n_classes": 3})}
    assert list(problems) == [("hidden", 1)]
    with pytest.raises(CarambaError, match="needs batch\\['x'\\]"):
        build_system({"ref": MLP, "config": {"d_in": 4, "n_classes": 2}})({"input_ids": torch.zeros(2, 4)})


def test_unknown_system_and_bad_spec():
    with pytest.raises(UnknownComponent) as info:
        build_system({"ref": "system.languge_model", "config": {}})
    assert info.value.fix == "did you mean 'system.language_model'?"
    with pytest.raises(CarambaError, match="needs 'ref'"):
        build_system({"config": {}})
    assert {"system.language_model", "system.mlp_classifier"} <= set(SYSTEMS.names())


def test_config_error_lists_every_problem():
    with pytest.raises(ConfigError) as info:
        build_system({"ref": MLP, "config": {"d_in": 0, "n_classes": 1}})
    text = str(info.value)
    assert "2 config problems" in text and "d_in" in text and "n_classes" in text
    assert len(info.value.problems) == 2


class _Spec:
    def __init__(self, impl: str | None, config: dict) -> None:
        self.ref, self.impl, self.config = MLP, impl, config


def test_system_python_impl_is_refused_unless_allowed():
    impl = "python:caramba.engine.systems.mlp_classifier:MLPClassifierSystem"
    spec = _Spec(impl, {"d_in": 3, "n_classes": 2})
    with pytest.raises(CarambaError) as info:
        build_system(spec)
    assert "not allowed" in info.value.message and "allow_python_impl" in info.value.fix
    assert isinstance(build_system(spec, allow_python_impl=True), MLPClassifierSystem)
    with pytest.raises(CarambaError, match="not a caramba System subclass"):
        build_system(_Spec("python:torch.nn:Linear", {}), allow_python_impl=True)


def test_python_layer_inside_a_model_is_gated_and_its_aux_losses_collected():
    cfg = tiny_lm_config(n_layers=1)
    cfg["model"]["topology"]["layers"].insert(0, {"impl": "python:caramba.tests.support.model_impls:PenaltyLayer"})
    problems = check_system({"ref": "system.language_model", "config": cfg})
    assert [p.path for p in problems] == [("model", "topology", "layers", 0, "impl")]
    assert check_system({"ref": "system.language_model", "config": cfg}, allow_python_impl=True) == []
    system = build_system({"ref": "system.language_model", "config": cfg}, allow_python_impl=True)
    node = system.describe().children[0].children[1].children[0]
    assert (node.type, node.params, node.children) == ("python:caramba.tests.support.model_impls:PenaltyLayer", 1, [])
    assert system.aux_losses() == {}
    system({"input_ids": torch.randint(0, 64, (2, 5))})
    aux = system.aux_losses()
    assert list(aux) == ["model.topology.layers.0.inner.penalty"]
    aux["model.topology.layers.0.inner.penalty"].backward()
    assert system.model.topology.layers[0].inner.w.grad is not None
